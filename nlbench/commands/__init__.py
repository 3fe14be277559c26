"""CLI commands: each module defines ``register(cli)`` and is added automatically."""
