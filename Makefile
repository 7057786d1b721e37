# make demo: set up .venv and write the derivations into output/; make test: the whole suite; make docs: the site.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the extras installed: `make test EXTRAS=test,frameworks` adds PyTorch, JAX, scikit-learn and matplotlib
EXTRAS ?= test

.PHONY: demo test docs bench notebooks training clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m derive examples

test: $(STAMP)
	$(PY) -m pytest -n auto   # one worker per core (pytest-xdist)

docs: $(STAMP)
	$(PY) -m mkdocs build --strict

training: $(STAMP)
	$(PY) -m pip install --quiet -e ".[frameworks]"
	$(PY) examples/training.py

notebooks: $(STAMP)
	$(PY) examples/execute.py

bench: $(STAMP)
	$(PY) bench/engine.py
	$(PY) bench/networks.py
	$(PY) bench/verify.py
	$(PY) bench/codegen.py
	$(PY) bench/dask_scaling.py
	$(PY) bench/blocks.py
	$(PY) bench/second.py
	$(PY) bench/pytest_plugin.py
	$(PY) bench/train.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis site
