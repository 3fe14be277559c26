"""Images/s of nlbench's device-side pipeline vs a torchvision DataLoader with per-image transforms.

    pytest benchmarks/bench_pipeline.py --benchmark-only -s

Both produce one epoch of normalised, randomly cropped (padding 4) and flipped 32×32 batches of
128 from the same CIFAR-shaped synthetic uint8 data, on CUDA when available. The ratio
(nlbench / torchvision) is printed after the second benchmark.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlbench.core.seeding import numpy_rng, torch_generator
from nlbench.training.data import DatasetData, ImageSet, TrainSet

N, BATCH = 5000, 128
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def images():
    rng = numpy_rng("bench-pipeline")
    x = torch.from_numpy(rng.integers(0, 256, (N, 3, 32, 32), dtype=np.uint8))
    y = torch.from_numpy(rng.integers(0, 10, N))
    return ImageSet(x, y)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _epoch(batches) -> int:
    seen = 0
    last = None
    for x in batches:
        seen += x.shape[0]
        last = x
    if last is not None and last.is_cuda:
        torch.cuda.synchronize()
    return seen


def test_nlbench_device_pipeline(benchmark, images):
    data = DatasetData(images, images, 10, [str(i) for i in range(10)], MEAN, STD, "crop_flip")
    dev = device()
    train = TrainSet(images, images.y, data, dev, BATCH, torch_generator(0, dev))
    seen = benchmark.pedantic(
        lambda: _epoch(b.x for b in train.batches()), rounds=3, warmup_rounds=1
    )
    assert seen == N
    RESULTS["nlbench"] = N / benchmark.stats.stats.mean


def test_torchvision_dataloader(benchmark, images):
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms as T

    tf = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )
    arrays = images.x.permute(0, 2, 3, 1).numpy()

    class PerImage(Dataset):
        def __len__(self) -> int:
            return N

        def __getitem__(self, i: int):
            return tf(Image.fromarray(arrays[i])), int(images.y[i])

    dev = device()
    loader = DataLoader(
        PerImage(),
        batch_size=BATCH,
        shuffle=True,
        num_workers=2,
        pin_memory=dev.type == "cuda",
        generator=torch_generator(0),
        persistent_workers=True,
    )

    def epoch() -> int:
        return _epoch(x.to(dev, non_blocking=True) for x, _ in loader)

    seen = benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
    assert seen == N
    RESULTS["torchvision"] = N / benchmark.stats.stats.mean
    if "nlbench" in RESULTS:
        ratio = RESULTS["nlbench"] / RESULTS["torchvision"]
        print(
            f"\n[{dev}] nlbench {RESULTS['nlbench']:,.0f} img/s, torchvision DataLoader "
            f"{RESULTS['torchvision']:,.0f} img/s: ratio {ratio:.1f}x"
        )
