"""The package version, in a module of its own so that any layer can read it without importing
the root package (which would close an import cycle)."""

__version__ = "0.1.0"
