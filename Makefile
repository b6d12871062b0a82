# The README's two commands: `make demo` and `make test`. Both create .venv on first use and are
# idempotent: the install step re-runs only when pyproject.toml or constraints.txt change.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck chromium clean

$(STAMP): pyproject.toml constraints.txt requirements-test-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt --no-deps -r requirements-test-nodeps.txt
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check spikec passes targets tests examples benchmarks
	$(BIN)/ruff format --check spikec passes targets tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy spikec passes targets

# tests/test_report_html.py renders report.html in headless Chromium: Debian's chromium package (apt, as root or
# through sudo), installed once.
chromium:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	{ SUDO=$$(test "$$(id -u)" -eq 0 || echo sudo); $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The suite on every core (pytest-xdist); a test file stays on one worker, so its module fixtures are built once.
test: lint typecheck chromium
	$(BIN)/python -m pytest -q -n auto --dist loadfile

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# ANN->SNN conversion benchmark, peer side (benchmarks/ann2snn/README.md). The peers (sinabs, SpikingJelly) live in
# their own virtual environment, created idempotently like .venv above: the install re-runs only when the
# requirement or constraint files change.
PEERS_VENV  := benchmarks/.venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
BENCH_DIR   := benchmarks/ann2snn
PEERS_PIP   := $(PEERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c $(BENCH_DIR)/constraints-peers.txt

.PHONY: bench-env bench-ann2snn

$(PEERS_STAMP): $(BENCH_DIR)/requirements-peers.txt $(BENCH_DIR)/requirements-peers-nodeps.txt $(BENCH_DIR)/constraints-peers.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_PIP) -r $(BENCH_DIR)/requirements-peers.txt
	$(PEERS_PIP) --no-deps -r $(BENCH_DIR)/requirements-peers-nodeps.txt
	touch $(PEERS_STAMP)

bench-env: $(PEERS_STAMP)

bench-ann2snn: $(PEERS_STAMP)
	$(PEERS_VENV)/bin/python $(BENCH_DIR)/peers.py

# Lava 0.10 (Loihi 2 bit-accurate simulation) lives in its own Python 3.10 environment, driven by subprocess
# (targets/loihi2/lava_env.py). Python 3.10 comes from pyenv (PYTHON310 overrides); the install re-runs only when the
# pinned requirements change. `make test` builds it so the tests against Lava run in CI.
LAVA_VENV  := .venv-lava
LAVA_STAMP := $(LAVA_VENV)/.installed
LAVA_REQS  := targets/loihi2/requirements-lava.txt
PYTHON310  ?= $(shell ls "$$(pyenv root 2>/dev/null)"/versions/3.10.*/bin/python3.10 2>/dev/null | tail -n 1 | grep . || command -v python3.10)

.PHONY: lava-env

$(LAVA_STAMP): $(LAVA_REQS)
	@test -n "$(PYTHON310)" || { echo "make lava-env: no python3.10 found (install it with 'pyenv install 3.10.13' or set PYTHON310=/path/to/python3.10); lava-nc 0.10.0 runs only on Python 3.10" >&2; exit 1; }
	test -x $(LAVA_VENV)/bin/python || $(PYTHON310) -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(LAVA_REQS)
	touch $(LAVA_STAMP)

lava-env: $(LAVA_STAMP)

test: $(LAVA_STAMP)
