"""Algorithms the methods share, as plain functions on tensors: meta-gradients, MixMatch, the
two-component GMM, facility location. They know nothing of runs, plugins or records."""
