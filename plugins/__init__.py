"""nlbench's built-in plugins, installed as ``nlbench_plugins`` and loaded through the same
``nlbench`` entry-point group as any third-party plugin (one concern per module)."""
