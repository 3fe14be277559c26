"""The run engine, one run: preflight, preparing inputs, the runner and its epoch loop, evaluation,
run
directories, checkpoints and resume."""
