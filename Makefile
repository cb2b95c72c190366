# Two entry points do all the set-up on a fresh machine:
#   make demo   creates .venv if missing, then runs the offline demo on SynthFashion
#   make test   creates .venv if missing, then runs the tests and every notebook (quick mode)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo demo-quick test test-unit notebooks benchmarks clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mclfir_lite demo --out runs/demo

demo-quick: $(STAMP)
	$(PY) -m mclfir_lite demo --quick --out runs/demo-quick

test: $(STAMP)
	MCLFIR_QUICK=1 $(PY) -m pytest tests
	MCLFIR_QUICK=1 $(PY) -m pytest --nbmake --nbmake-timeout=600 notebooks/*.ipynb

test-unit: $(STAMP)
	MCLFIR_QUICK=1 $(PY) -m pytest tests

# Re-execute every notebook in place at the default size (the committed outputs), in order so
# that later notebooks reuse earlier runs from the cache, then regenerate the student copies.
notebooks: $(STAMP)
	$(PY) notebooks/execute_all.py
	$(PY) notebooks/make_student_copies.py

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

.PHONY: benchmarks-quick
benchmarks-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick

clean:
	rm -rf runs .pytest_cache
