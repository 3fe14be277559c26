"""DistributedDataParallel on CPU with gloo: 2 processes match one within tolerance."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from nlbench.training import distributed


def run_args(method: str, train_subset: int, *extra: str) -> list[str]:
    """A 3-epoch CPU run at 40 % noise, run_id ``d`` (the same for one and two processes)."""
    base = f"run --method {method} --noise 0.4 --epochs 3 --device cpu -q --run-id d"
    return [*base.split(), "--train-subset", str(train_subset), *extra]


ARGS = run_args("erm", 800)


def _join_group(rank: int, world: int, rendezvous: str):
    """Join a gloo group through a shared file (no TCP port to pick, so none can be taken)."""
    import torch.distributed as dist

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    return distributed.setup("cpu")[0]  # joins the group that is already there


def _run_two(worker, tmp_path) -> dict:
    """Run ``worker(rank, world, rendezvous, queue)`` in two spawned processes; {rank: result}."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    rendezvous = str(tmp_path / "rendezvous")
    procs = [ctx.Process(target=worker, args=(r, 2, rendezvous, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return results


def _gather_worker(rank: int, world: int, rendezvous: str, queue) -> None:
    info = _join_group(rank, world, rendezvous)
    lo, hi = distributed.shard_range(7, info)
    part = torch.arange(lo, hi, dtype=torch.float32)[:, None].repeat(1, 2)
    queue.put((rank, distributed.gather_rows(part, 7, info).tolist()))
    distributed.teardown(info)


def test_gather_rows_reassembles_unequal_shards(tmp_path):
    results = _run_two(_gather_worker, tmp_path)
    expected = [[float(i), float(i)] for i in range(7)]
    assert results[0] == expected and results[1] == expected


def _average_worker(rank: int, world: int, rendezvous: str, queue) -> None:
    info = _join_group(rank, world, rendezvous)
    a, b = torch.zeros(2, 3, requires_grad=True), torch.zeros(4, requires_grad=True)
    a.grad = torch.full((2, 3), float(rank + 1))
    b.grad = torch.arange(4.0) * (rank + 1)
    none = torch.zeros(1, requires_grad=True)  # no grad: left alone
    distributed.average_grads([a, b, none])
    queue.put((rank, (a.grad.tolist(), b.grad.tolist(), none.grad)))
    distributed.teardown(info)


def test_average_grads_means_meta_net_gradients_over_ranks(tmp_path):
    """Meta-nets and FaMUS samplers live outside DDP: their gradients are averaged by hand."""
    for a, b, none in _run_two(_average_worker, tmp_path).values():
        assert a == [[1.5] * 3] * 2 and b == [0.0, 1.5, 3.0, 4.5] and none is None
    a = torch.zeros(2, requires_grad=True)
    a.grad = torch.ones(2)
    distributed.average_grads([a])  # no process group: a no-op
    assert a.grad.tolist() == [1.0, 1.0]


def one_and_two_processes(tmp_path, args: list[str]) -> tuple[dict, dict]:
    """The records of ``nlbench <args>`` in one process and under torchrun with two (gloo);
    ``--standalone`` lets torchrun bind a free port itself (no pick-then-bind race)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-m", "nlbench", *args, "--out", str(tmp_path / "one")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "nlbench",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stderr
    one = json.loads((tmp_path / "one" / "d" / "run.json").read_text())
    two = json.loads((tmp_path / "two" / "d" / "run.json").read_text())
    assert two["env"]["world_size"] == 2 and two["status"] == "done"
    return one, two


@pytest.mark.slow
@pytest.mark.parametrize(
    "method,extra",
    [
        ("mwnet", ["--set", "meta_set=clean:100"]),
        ("famus", ["--set", "warmup_epochs=1"]),
    ],
)
def test_two_process_meta_learners_match_single_process(tmp_path, method, extra):
    """The meta path under DDP: look-ahead through the wrapped net, meta-net steps averaged."""
    one, two = one_and_two_processes(tmp_path, run_args(method, 600, *extra))
    assert abs(one["summary"]["last_acc"] - two["summary"]["last_acc"]) < 0.1


@pytest.mark.slow
def test_two_process_gloo_run_matches_single_process(tmp_path):
    one, two = one_and_two_processes(tmp_path, ARGS)
    assert two["noise"]["labels_sha256"] == one["noise"]["labels_sha256"]
    for a, b in zip(one["epochs"], two["epochs"]):
        assert abs(a["test_acc"] - b["test_acc"]) < 0.08
        assert abs(a["noisy_fit"] - b["noisy_fit"]) < 0.1  # scans cover every sample
