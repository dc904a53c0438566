# Two entry points for newcomers and CI: `make demo` and `make test`.
# Both build a local virtualenv (.venv) on first use from pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/forensics demo

test: $(STAMP)
	$(BIN)/python -m pytest

# throughput and accuracy figures (printed; the README quotes them)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_depth.py
	$(BIN)/python benchmarks/bench_attribution.py
	$(BIN)/python benchmarks/bench_simulate.py
	$(BIN)/python benchmarks/eval_classifier.py --seeds 20 --first-seed 101

.PHONY: venv demo test bench
