"""Hysteresis check: does a *fresh* meta-net, trained on the current network, learn the curve
the checkpoint's meta-net has?

From one MW-Net checkpoint, the network is frozen and only the meta-net takes ``steps`` meta
steps (exact meta-gradient, the run's meta optimiser, real training and meta batches), once
from the checkpoint's meta-net and once from a freshly initialised one. Printed: the weight
curve on a fixed loss grid and the detection AUC of the weight (train set, no augmentation,
eval mode) before and after. Run from the repository root with the checkpoint's run flags:

    PYTHONPATH=. python docs/methods/mwnet_fresh_metanet.py CKPT --dataset cifar10 \
        --noise cifar_n:worse --profile cpu --train-subset 5000 --data-root data --steps 100
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from mwnet_alignment import checkpoint_parser, load
from sklearn.metrics import roc_auc_score

from nlbench.algorithms import metagrad
from nlbench_plugins.meta.weighting import VNet, meta_optimizer

GRID = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def report(tag, vnet, loss, is_clean) -> None:
    with torch.no_grad():
        curve = [round(float(v), 3) for v in vnet(GRID)]
        auc = roc_auc_score(is_clean, vnet(loss).numpy())
    print(f"{tag:28s} AUC(weight) {auc:.3f}  W(grid {GRID.tolist()}) {curve}")


def meta_steps(learner, ctx, vnet, steps: int, lr: float) -> None:
    opt = meta_optimizer(vnet.parameters(), learner.hp)
    theta, norm = list(vnet.parameters()), str(learner.hp["weight_norm"])
    batches = itertools.cycle(list(itertools.islice(ctx.train.batches(), steps)))
    for _ in range(steps):
        b = next(batches)
        mx, my = learner.meta.draw(int(learner.hp["meta_batch_size"] or b.x.shape[0]))

        def weigh(losses):
            return (metagrad.normalise_weights(vnet(losses.detach()), norm) * losses).sum()

        mg = metagrad.meta_gradient(learner.model, b.x, b.y, weigh, theta, mx, my, lr)
        opt.zero_grad(set_to_none=True)
        for p, g in zip(theta, mg.grads):
            p.grad = g
        opt.step()


def main() -> None:
    ap = checkpoint_parser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.05, help="the look-ahead lr α")
    args = ap.parse_args()
    prep, ctx, learner = load(args)
    model, train = learner.model, ctx.train
    model.eval()
    with torch.no_grad():
        loss = torch.cat(
            [
                F.cross_entropy(model(train.plain(i)).float(), train.labels[i], reduction="none")
                for i in train.scan_batches(256)
            ]
        )
    is_clean = train.labels.numpy() == prep.clean
    model.train()
    torch.manual_seed(0)
    fresh = VNet(int(learner.hp["meta_hidden"]))
    for tag, vnet in (("checkpoint meta-net", learner.vnet), ("fresh meta-net", fresh)):
        report(f"{tag}, before", vnet, loss, is_clean)
        meta_steps(learner, ctx, vnet, args.steps, args.lr)
        report(f"{tag}, after {args.steps}", vnet, loss, is_clean)


if __name__ == "__main__":
    main()
