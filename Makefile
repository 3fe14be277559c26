# Quickstart: `make demo` and `make test` each set up .venv on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
NLBENCH := $(VENV)/bin/nlbench
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# A pip index to take torch and torchvision from first, e.g. PyTorch's CPU-only wheels on a
# machine without a GPU (README, "Install"). Empty: pip's default index (the CUDA build on Linux).
TORCH_INDEX ?=
DEMO_THREADS ?= 1

.PHONY: setup demo lint test test-all bench leaderboards studies gpu-check dist clean

# The last step fills the static cache, so the CLI's first usage error answers without torch.
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install -q torch torchvision --index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[test]'
	@$(PY) -c "from nlbench.host.static_specs import static_host; static_host()" || true
	@touch $(STAMP)

setup: $(STAMP)

# ~35 s of CPU in all (measured: ERM 11 s, FaMUS 24 s, start-up included, one thread): under a
# minute on an idle 2-core machine. A second `make demo` finds both records and returns at once.
demo: setup
	@echo "demo: ERM, then FaMUS, on the embedded digits set (1,797 8x8 images) with 60% of the"
	@echo "      labels flipped (--noise 0.6), on the CPU: under a minute on an idle 2-core"
	@echo "      machine (longer on a busy one). Each run shows epoch k/N, images/s and its ETA."
	OMP_NUM_THREADS=$(DEMO_THREADS) $(NLBENCH) run --method erm --dataset digits --noise 0.6 --device cpu
	OMP_NUM_THREADS=$(DEMO_THREADS) $(NLBENCH) run --method famus --dataset digits --noise 0.6 --device cpu
	@echo "demo: compare 'last acc' and 'noisy_fit' (how much of the noise the net memorised)."

# ruff (rules in pyproject.toml) on all Python code; mypy on the package, the built-in plugins
# (every def annotated) and the tests (checked, not forced to annotate; pyproject [tool.mypy]);
# import-linter: the layers, no import cycle, plugins on nlbench.api only (CONTRIBUTING, "Layers").
LINTED := nlbench plugins tests benchmarks docs
lint: setup
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy nlbench plugins tests
	$(VENV)/bin/lint-imports

# Lint, then the fast suite (CI). Slow, GPU and real-data tests are behind markers; -rs lists
# every skipped test with its reason; pytest's exit 5 (no tests collected) is not a failure.
test: setup
	@echo "make test: lint first (ruff check, ruff format --check, mypy), then the fast suite"
	@$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q -rs -m "not slow and not gpu" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi
	$(NLBENCH) leaderboard --results results --out leaderboards --check

test-all: setup
	$(PY) -m pytest -q -rs $(PYTEST_ARGS)

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

# The sdist and the wheel, checked as PyPI will (the release workflow does the same on a tag).
dist: setup
	rm -rf dist
	$(PY) -m build --outdir dist
	$(PY) -m twine check --strict dist/*

clean:
	rm -rf runs build dist *.egg-info
