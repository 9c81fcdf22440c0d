# Every target makes (or reuses) a virtualenv under the repository and installs what it
# needs, so on a fresh machine `make demo` and `make test` are all a newcomer types.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-hw bench lint venv clean

$(STAMP): setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[test,lint,remote]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# Tests that need a real Raspberry Pi (marked `hw`); run on a Pi as root or in group video.
test-hw: $(STAMP)
	$(PY) -m pytest -q -m hw --run-hw

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

lint: $(STAMP)
	$(VENV)/bin/ruff check qpu runtime emulator asm_kernels tests benchmarks examples
	$(VENV)/bin/mypy qpu
	$(VENV)/bin/vermin --no-tips --violations --target=3.9- qpu runtime emulator asm_kernels examples

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
