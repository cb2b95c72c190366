# Two entry points do all the set-up on a fresh machine (no make? see README, "Without make"):
#   make demo   creates .venv if missing, then runs the offline demo on SynthFashion
#   make test   creates .venv if missing, then runs the unit tests, the browser test and every
#               notebook at the default size (what the committed outputs are)
# .venv gets the exact versions of constraints.txt (the committed numbers); pyproject.toml keeps
# compatible ranges. `make test-newest PYTHON=python3.13` tries the newest versions instead.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
CONSTRAINTS ?= constraints.txt
# numbered notebooks, in order: nbmake runs them in one process in this order, so later notebooks
# reuse the runs earlier ones cached under MCLFIR_CACHE
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
NBMAKE := --nbmake --nbmake-timeout=1200

.PHONY: install demo demo-quick doctor test test-unit test-browser test-notebooks test-notebooks-quick test-remeasure test-quick \
        test-newest notebooks benchmarks benchmarks-quick clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m mclfir_lite demo --out runs/demo

demo-quick: $(STAMP)
	$(PY) -m mclfir_lite demo --quick --out runs/demo-quick

doctor: $(STAMP)
	$(PY) -m mclfir_lite doctor

test: test-unit test-notebooks test-remeasure test-browser

# unit tests (quick mode: small sizes, seconds each); the browser test runs on its own
test-unit: $(STAMP)
	MCLFIR_QUICK=1 $(PY) -m pytest tests -m "not browser and not remeasure"

# the benchmarks the notebooks quote and do not recompute, re-measured on one seed at the default
# size (tests/test_remeasure.py: a few minutes); after the notebooks, which render the images
test-remeasure: $(STAMP)
	MCLFIR_QUICK= $(PY) -m pytest tests -m remeasure

# JupyterLab in headless Chromium (needs the system chromium; see README); after the notebooks,
# so that the runs it shows are in the cache already. Without chromium the test skips and pytest
# ends with "THESE TESTS DID NOT RUN"; with CI=true that skip fails the target (tests/conftest.py)
test-browser: $(STAMP)
	MCLFIR_BROWSER_LAB=default $(PY) -m pytest tests -m browser

# every notebook at the default size, as a learner runs it (set MCLFIR_QUICK=1 for the small size)
test-notebooks: $(STAMP)
	$(PY) -m pytest $(NBMAKE) $(NOTEBOOKS)

# every notebook in quick mode (MCLFIR_QUICK=1), as a learner's first look runs it: its claims and
# exercises hold at that size too (CI runs it after `make test`)
test-notebooks-quick: $(STAMP)
	MCLFIR_QUICK=1 $(PY) -m pytest $(NBMAKE) $(NOTEBOOKS)

# the small version of `make test` (minutes): unit tests and notebooks in quick mode, no browser
test-quick: $(STAMP)
	MCLFIR_QUICK=1 $(PY) -m pytest tests -m "not browser and not remeasure"
	MCLFIR_QUICK=1 $(PY) -m pytest $(NBMAKE) $(NOTEBOOKS)

# unit tests with the newest versions pyproject.toml allows (no constraints), in a fresh venv:
#   make test-newest PYTHON=python3.13
NEWEST_VENV ?= .venv-newest-$(notdir $(PYTHON))
test-newest:
	rm -rf $(NEWEST_VENV)
	$(PYTHON) -m venv $(NEWEST_VENV)
	$(NEWEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NEWEST_VENV)/bin/python -m pip install --quiet -e ".[dev]"
	$(NEWEST_VENV)/bin/python -m pip freeze --exclude-editable | grep -iE '^(torch|torchvision|numpy|pillow|timm|open.clip.torch|matplotlib|scikit.learn|pytest)=='
	MCLFIR_QUICK=1 $(NEWEST_VENV)/bin/python -m pytest tests -m "not browser and not remeasure"

# Re-execute every notebook in place at the default size (the committed outputs), in order so
# that later notebooks reuse earlier runs from the cache, then regenerate the student copies.
notebooks: $(STAMP)
	$(PY) notebooks/execute_all.py
	$(PY) notebooks/make_student_copies.py

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

benchmarks-quick: $(STAMP)
	$(PY) benchmarks/run_all.py --quick

clean:
	rm -rf runs .pytest_cache
