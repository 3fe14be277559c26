"""Known differences of ``mwnet``, ``l2r`` and ``famus`` from their official code.

Not a plugin (no entry point). Each is a :class:`nlbench.core.specs.Deviation` (``nlbench show
method``); official behaviour is the ``paper`` profile where a switch exists. Checked against
meta-weight-net (``MW-Net.py``, ``train_WRN-28-10_Meta_PGC.py``), learning-to-reweight-examples
(``reweight_model.py``, ``cnn_model.py``) and FaMUS (``grad_operator_layer.py``,
``train_famus_redminiimage.py``, ``build_models.py``, the supplement).
"""

from __future__ import annotations

from nlbench.api import Deviation

_META_STREAM = Deviation(
    what="meta batches are drawn from an endless stream reshuffled after each pass; a pass "
    "whose remainder is smaller than meta_batch_size is skipped (the official DataLoader "
    "yields it as a short batch)",
    why="fixed-size meta batches, no host sync; identical when meta_batch_size divides the "
    "meta set (1,000 / 100 in the paper settings)",
    restore="choose meta_batch_size dividing N (e.g. --set meta_set=clean:1000 "
    "--set meta_batch_size=100)",
)
_SCHEDULE = Deviation(
    what="one epoch = one pass over the noisy train set at the run's batch size; the official "
    "scripts count iterations (MW-Net WRN 20k, L2R 60k) and step the lr by iteration",
    why="every method in the suite shares the epoch loop, the records and the lr schedules",
    restore="--profile paper (milestones converted to epochs)",
)
_MWNET_OPT = Deviation(
    what="the meta-net optimiser is Adam(1e-3, wd 1e-4) (stable MW-Net.py; also in the quick "
    "and cpu profiles) while weights are normalised to sum one (WRN script): a mix of the two "
    "official scripts",
    why="SGD 1e-3 barely moves the meta-net in short CPU budgets; w/Σw stops the meta-net "
    "from lowering the meta loss by scaling every weight up (digits 60 %: weights → 1)",
    restore="--profile paper (SGD 1e-3, m 0.9, Nesterov, wd 5e-4, w/Σw: the WRN script) or "
    "--set weight_norm=mean (MW-Net.py)",
)
# The official code is fp32 throughout (MW-Net and FaMUS: PyTorch without autocast, FaMUS on
# torch 1.0; L2R: TensorFlow float32). The paper profiles set amp=false on every dataset.
_AMP = Deviation(
    what="on CUDA the quick and cpu profiles (amp=true) evaluate the test set and scan the "
    "train set (the losses behind GMM pseudo-clean meta sets; FaMUS's mixmatch=true also its "
    "label refinement and co-guessing) under bf16 autocast; the official code is fp32. "
    "Training steps (look-ahead, meta loss, actual step) are always fp32; on CPU amp does nothing",
    why="speed on tensor cores; amp is an execution setting (not in the run_id): the paper "
    "profile runs the official fp32",
    restore="--set amp=false (the paper profile's value)",
)
_UNIF_NOISE = Deviation(
    what="the official 'unif' noise (load_corrupted_data.py: each label drawn from r/C + "
    "(1 - r)·I) may keep the true class, so its realized rate is r(1 - 1/C); the boards' "
    "default sym flips exactly round(r·N) labels to another class",
    why="the boards compare every method on one noise convention",
    restore="--noise sym_incl:R (round(r·N) labels redrawn over all C classes, true class "
    "included; the official draws each label independently, a binomial count)",
)
_L2R_NOISE = Deviation(
    what="the official uniform noise (generate_noisy_cifar_data.py) relabels int(r·N) samples "
    "with floor(U(0, C - 1)): classes 0 to C - 2 (never the last), the true class included; "
    "the boards' default sym flips exactly round(r·N) labels to another class",
    why="the boards compare every method on one noise convention",
    restore="--noise sym_incl:R (the nearest: round(r·N) labels redrawn over all C classes)",
)
_FAMUS_LAYERS = Deviation(
    what="gated layers = the last famus_gated tensors in forward order (found from the "
    "autograd graph) minus the classifier pair; the official code takes model.params()"
    "[-15:-2] in registration order",
    why="timm-style networks register their classifier first; forward order is the layer "
    "depth the paper means",
    restore="",
)
_FAMUS_PRIOR = Deviation(
    what="each sampler's class-1 bias starts at log(K/(L−K)) and its last layer is scaled by "
    "0.1, so a fresh sampler picks about K of L layers; the official samplers use the "
    "default initialisation",
    why="a default-initialised sampler picks about half the layers until L_r pulls it to K",
    restore="",
)

MWNET = (
    _META_STREAM,
    _SCHEDULE,
    Deviation(
        what="train batches come in shuffled passes (one per epoch) and meta batches from the "
        "reshuffled stream above; the official WRN-28-10 script (train_WRN-28-10_Meta_PGC.py, "
        "the paper profile's source) draws every step's train and meta batch independently "
        "(next(iter(loader)) on a freshly shuffled loader), so within its 20k iterations "
        "samples are seen unequal numbers of times (MW-Net.py uses passes, as here)",
        why="one epoch loop for every method: records, lr schedules and resume count passes",
        restore="",
    ),
    _MWNET_OPT,
    _AMP,
    _UNIF_NOISE,
)

L2R = (
    _META_STREAM,
    _SCHEDULE,
    Deviation(
        what="the quick and cpu profiles decay every tensor (biases, batch-norm parameters), in "
        "the SGD step and the clean cost; the official ResNet decays only the conv kernels and "
        "the final layer's weight (models/cnn/resnet_module.py)",
        why="every method of the suite decays every tensor in these profiles, so their boards "
        "compare methods, not decay sets; their records keep their run_ids",
        restore="--set decay_scope=weights (the paper profile's value)",
    ),
    _AMP,
    _L2R_NOISE,
    Deviation(
        what="with famus=true the L_g term is left out of ε's gradient",
        why="L2R's training gradient at ε = 0 is zero, so L_g's std has no gradient there; "
        "there is no official L2R + FaMUS code",
        restore="",
    ),
)

FAMUS = (
    Deviation(
        what="no MixMatch by default: the supplement's Algorithm 2 (two MW-Nets with samplers "
        "on each other's GMM pseudo-clean set) on plain cross-entropy",
        why="the official code exists only for CNWL red noise (train_famus_redminiimage.py)",
        restore="--set mixmatch=true (the CNWL code's co-divide, refinement, MixMatch, λu ramp)",
    ),
    Deviation(
        what="L_r = (Σ_l r_l − K)² over all gates (paper); the released code appends the gate "
        "activations outside its loop, so its L_r sees only the last gate",
        why="the paper's equation; the released behaviour is a bug",
        restore="--set famus_reg_quirk=true",
    ),
    Deviation(
        what="warm-up epochs of plain cross-entropy count towards --epochs; the official CNWL "
        "script warms up for warmup_epochs before its epoch loop",
        why="one epoch counter for records, schedules and resume",
        restore="add warmup_epochs to --epochs (the lr schedule then spans the warm-up too)",
    ),
    Deviation(
        what="a pseudo-clean meta set smaller than one meta batch falls back to the more "
        "probably clean half of the train set; the official code has this guard only for "
        "the training split",
        why="an empty or tiny meta set would stop the run",
        restore="",
    ),
    _AMP,
    Deviation(
        what="the quick and cpu profiles train the networks with SGD without Nesterov momentum "
        "(the optimiser every method of the suite shares there); the official build_models.py "
        "defaults --nesterov to true, for the networks and the meta-net",
        why="one network optimiser for every method on the CPU boards; their records keep "
        "their run_ids",
        restore="--set nesterov=true (the paper profile's value)",
    ),
    Deviation(
        what="the quick and cpu profiles train the meta-net with Adam(1e-3, wd 1e-4) instead "
        "of SGD(1e-3, m 0.9, Nesterov, wd 5e-4)",
        why="SGD 1e-3 barely moves the meta-net in a few hundred CPU steps (digits 60 %: "
        "weights stay ~0.57)",
        restore="--profile paper or --set meta_opt=sgd --set meta_wd=0.0005",
    ),
    _FAMUS_LAYERS,
    _FAMUS_PRIOR,
)
