"""``make gpu-check``: one prepared script that says whether a GPU machine is ready for the boards.

Four sections, one JSON report (``python -m nlbench.gpucheck --out FILE``):

* ``speed``: ERM through nlbench's epoch path against a plain PyTorch loop on the same model,
  data and settings, with and without bf16 autocast, channels-last and ``torch.compile``
  (:mod:`nlbench.gpucheck.speed`, built on :mod:`nlbench.bench.measure`);
* ``method_ratios``: ``nlbench bench`` for the costly methods (MW-Net, L2R, FaMUS, DivideMix):
  each one's epoch time over ERM's; ``nlbench sweep --dry-run --ratios FILE`` reads them;
* ``epochs``: two epochs of every method on a 5,000-image CIFAR-10 subset with the paper models:
  finite losses, accuracy above chance, records written (real CIFAR-10 when the data root has
  it, else a learnable synthetic set written in the official format);
* ``ddp``: the same run under ``torchrun`` and without it.

``--tiny`` runs all of it on a CPU in about a minute (tiny model, a few steps, gloo), so the fast
test suite keeps the script working between the rare occasions a GPU is at hand.
"""
