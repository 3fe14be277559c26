"""Placeholder: filled by its issue (registers nothing yet)."""
