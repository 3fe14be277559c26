# Quickstart: `make demo` and `make test` each set up .venv on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
NLBENCH := $(VENV)/bin/nlbench
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo lint test test-all bench leaderboards studies gpu-check clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(NLBENCH) run --method famus --dataset digits --noise 0.6

# ruff (rules in pyproject.toml) on all Python code; mypy on the package and the built-in plugins.
LINTED := nlbench plugins tests benchmarks docs
lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy nlbench plugins

# Lint, then the fast suite (CI). Slow, GPU and real-data tests are behind markers; pytest's exit 5
# (no tests collected) is not a failure.
test: setup lint
	$(PY) -m pytest -q -m "not slow and not gpu" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi
	$(NLBENCH) leaderboard --results results --out leaderboards --check

test-all: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) -m pytest benchmarks --benchmark-only -q -s

# Regenerate the boards, figures, claims.md and studies/ from the committed records in results/.
leaderboards: setup
	$(NLBENCH) leaderboard --results results --out leaderboards

# One GPU machine check (~8 min on one modern GPU): speed against a plain PyTorch loop (AMP,
# channels-last, torch.compile), method cost ratios, two epochs of every method on CIFAR-10,
# torchrun vs a single process. One JSON report; exit 1 when a check fails. CPU self-test:
# $(PY) -m nlbench.gpucheck --tiny --out /tmp/gpu-check.json
GPU_CHECK_OUT ?= benchmarks/results/gpu-check.json
gpu-check: setup
	$(PY) -m nlbench.gpucheck --out $(GPU_CHECK_OUT) $(if $(NLBENCH_DATA),--data-root $(NLBENCH_DATA),)

# The digits study sweeps (about an hour of CPU for all 147 runs; finished runs are skipped), then
# the boards.
studies: setup
	$(NLBENCH) sweep -c leaderboards/sweeps/studies-memorisation-digits.toml
	$(NLBENCH) sweep -c leaderboards/sweeps/studies-batch-schedule-digits.toml
	$(NLBENCH) sweep -c leaderboards/sweeps/studies-batch-schedule-digits-steps.toml
	$(MAKE) leaderboards

clean:
	rm -rf runs build *.egg-info
