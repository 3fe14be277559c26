"""Internals of ``mwnet``, ``l2r`` and ``famus`` (not a plugin: registers nothing).

A meta-reweighting method is a composition of three small strategies:

* a *weighting* (:mod:`.weighting`): MW-Net's meta-net on the loss, or L2R's per-step ε;
* a *meta-gradient rule* (:mod:`.rules`, :mod:`.gated`): the exact look-ahead (double
  backward through ``torch.func``), its first-order finite-difference / forward-mode variant,
  or FaMUS's layer-gated look-ahead;
* a *meta-set source* (:mod:`.sources`): the trusted hold-out, the network's own GMM
  pseudo-clean set, or the peer network's (two networks, exchanged).

:class:`.learner.Learner` runs one network's step with a weighting and a rule;
:class:`.method.MetaReweight` owns the learners and the source. The ``method_*`` plugin modules
only choose the parts.
"""
