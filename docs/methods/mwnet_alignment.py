"""What MW-Net's meta objective asks of its weight function, from one checkpoint.

MW-Net's meta-net gradient is ``−α Σ_i (∂W_i/∂θ)·d_i`` (FaMUS supplement Eq. (3)) with
``d_i = <∇_w ℓ_i(w), ∇_w L_meta>``, the alignment of sample i's training gradient with the
clean meta set's gradient (L2R's weight). A meta-net that sees only the loss can follow d only
through the loss, so the sign of the loss–d correlation is the slope MW-Net is pushed towards.
This script reports, on the train set without augmentation and the network in eval mode:

* detection AUCs of the loss (low = clean) and of the meta-net's weight;
* mean d on clean and on mislabelled samples, and the loss–d rank correlation overall and
  *within* each noisy class (the part that no class-prior correction can explain);
* per noisy class: count, mean loss, mean d.

Run from the repository root (the checkpoint is a run directory's ``checkpoint.pt``; a finished
run deletes it, so copy it while the run is going):

    PYTHONPATH=. python docs/methods/mwnet_alignment.py CKPT --dataset cifar10 \
        --noise cifar_n:worse --profile cpu --train-subset 5000 --data-root data
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from nlbench.algorithms import metagrad
from nlbench.core.config import RunConfig
from nlbench.engine.checkpoint import RUNNER_KEYS
from nlbench.engine.context import build_context
from nlbench.engine.prepare import prepare
from nlbench.host.plugins import get_host


def _no_scan():
    raise RuntimeError("this script never scans the train set")


def load(args):
    cfg = RunConfig(
        method="mwnet",
        dataset=args.dataset,
        noise=args.noise,
        profile=args.profile,
        train_subset=args.train_subset,
        data_root=args.data_root,
        device="cpu",
        out="/tmp/nlbench-alignment",
    )
    host = get_host()
    prep = prepare(cfg, host)
    ctx = build_context(prep, torch.device("cpu"), _no_scan, host)
    method = prep.method_spec.factory(ctx)
    payload = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    method.load_state_dict({k: v for k, v in payload.items() if k not in RUNNER_KEYS})
    learner = method.learners["net"]
    print(f"checkpoint after {len(payload['epochs'])} epochs")
    return prep, ctx, learner


def meta_direction(model, ctx, bs: int) -> dict[str, torch.Tensor]:
    """∇_w of the mean cross-entropy on the clean meta set, averaged over batches of ``bs``
    (in train mode each batch normalises with its own statistics, as in a meta step)."""
    params = metagrad.trainable(model)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    chunks = torch.arange(ctx.meta.size).split(bs)
    for idx in chunks:
        logits = metagrad.virtual_logits(model, params, ctx.meta.images.plain(idx))
        loss = F.cross_entropy(logits, ctx.meta.labels[idx])
        for n, g in zip(params, torch.autograd.grad(loss, list(params.values()))):
            total[n] += g / len(chunks)
    return total


def checkpoint_parser() -> argparse.ArgumentParser:
    """The options both scripts take: a run checkpoint and the run it belongs to."""
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    for k, v in (
        ("dataset", "cifar10"),
        ("noise", "cifar_n:worse"),
        ("profile", "cpu"),
        ("data_root", None),
    ):
        ap.add_argument(f"--{k.replace('_', '-')}", default=v)
    ap.add_argument("--train-subset", type=int, default=None)
    return ap


def main() -> None:
    ap = checkpoint_parser()
    ap.add_argument("--train-mode", action="store_true", help="batch-norm batch statistics")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    prep, ctx, learner = load(args)
    model, train = learner.model.train(args.train_mode), ctx.train
    v = meta_direction(model, ctx, args.batch_size)
    losses, d = [], []
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    for idx in order.split(args.batch_size):  # shuffled: mixed-class batches, as in training
        x, y = train.plain(idx), train.labels[idx]
        with torch.no_grad():
            losses.append(
                F.cross_entropy(
                    metagrad.virtual_logits(model, metagrad.trainable(model), x),
                    y,
                    reduction="none",
                )
            )
        d.append(metagrad.jvp_directional(model, x, y, v))
    inv = torch.argsort(order)
    loss, d = torch.cat(losses)[inv], torch.cat(d)[inv]
    with torch.no_grad():
        w = learner.vnet(loss)
    noisy_lab = train.labels.numpy()
    is_clean = noisy_lab == prep.clean
    loss, d, w = loss.numpy(), d.numpy(), w.numpy()
    print(f"noise rate {1 - is_clean.mean():.3f}")
    print(
        f"AUC(−loss) {roc_auc_score(is_clean, -loss):.3f}  AUC(weight) "
        f"{roc_auc_score(is_clean, w):.3f}"
    )
    print(f"mean d: clean {d[is_clean].mean():.4g}  mislabelled {d[~is_clean].mean():.4g}")
    within = np.mean(
        [spearmanr(loss[noisy_lab == c], d[noisy_lab == c])[0] for c in np.unique(noisy_lab)]
    )
    print(
        f"spearman(loss, d) overall {spearmanr(loss, d)[0]:.3f}; within noisy classes {within:.3f}"
    )
    print(
        f"spearman(loss, d) among clean {spearmanr(loss[is_clean], d[is_clean])[0]:.3f}, "
        f"among mislabelled {spearmanr(loss[~is_clean], d[~is_clean])[0]:.3f}"
    )
    print("class  count  mean_loss  mean_d  clean_frac")
    for c in np.unique(noisy_lab):
        m = noisy_lab == c
        print(
            f"{c:5d} {m.sum():6d} {loss[m].mean():10.3f} {d[m].mean():8.4g} "
            f"{is_clean[m].mean():10.3f}"
        )


if __name__ == "__main__":
    main()
