"""Internals of the baseline methods (``coteaching``, ``jocor``, ``forward``, ...): the
small-loss schedule and selection, the anchor-point transition estimate. Registers nothing."""
