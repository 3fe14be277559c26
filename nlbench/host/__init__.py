"""The plugin host: loading plugins through pluggy, and the torch-free static view of what they
register (for the CLI's answers before torch loads). Below it nothing looks a plugin up by name."""
