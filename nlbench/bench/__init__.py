"""Speed benchmarks of the training step: interleaved, thread-pinned legs (``measure``) built
from the runner's own pieces (``legs``)."""
