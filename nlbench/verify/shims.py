"""Stand-ins for what the official training functions read from their script's body.

The official ``train()`` functions take DataLoaders and module-level loss objects and draw from
numpy's and torch's global generators. The adapters hand them :class:`Loader` (given batches),
:class:`Recorder` (the official loss object, keeping what it returned: the losses to compare)
and :class:`Replay` (the draws nlbench took, in order).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class Loader:
    """What the official loops read of a DataLoader: iteration over given batches,
    ``len(.dataset)`` and ``.batch_size``. Its iterator also answers Python 2's ``.next()``,
    which DivideMix's ``train()`` calls."""

    def __init__(self, batches: list[tuple[Any, ...]], batch_size: int) -> None:
        self.batches, self.batch_size = batches, batch_size
        self.dataset = range(len(batches) * batch_size)

    def __iter__(self) -> _Iter:
        return _Iter(iter(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


class Stream(Loader):
    """A loader every ``iter()`` of which continues where the last stopped: the WRN script
    takes ``next(iter(train_loader))`` once per iteration."""

    def __init__(self, batches: list[tuple[Any, ...]], batch_size: int) -> None:
        super().__init__(batches, batch_size)
        self.shared = _Iter(iter(batches))

    def __iter__(self) -> _Iter:
        return self.shared


class _Iter:
    def __init__(self, it: Iterator[Any]) -> None:
        self.it = it

    def __iter__(self) -> _Iter:
        return self

    def __next__(self) -> Any:
        return next(self.it)

    next = __next__


class Replay:
    """Returns recorded values in order, whatever it is called with (``np.random.beta``,
    ``torch.randperm``); one call too many is an adapter error."""

    def __init__(self, values: list[Any]) -> None:
        self.values = list(values)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.values:
            raise RuntimeError("the official code drew more often than nlbench did")
        return self.values.pop(0)


class Recorder:
    """Calls an official loss object and keeps every value it returned."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.fn(*args, **kwargs)
        self.calls.append(out)
        return out
