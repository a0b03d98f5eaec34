# Two commands do all the set-up on a fresh machine:
#   make demo   - create/reuse .venv, build the C core, run the main job on the shipped default example
#   make test   - the same set-up, then the test suite
#   make lint   - the same set-up plus the lint extra, then ruff (lint + format check) and mypy (see CONTRIBUTING.md)
# The environment is .venv in this folder; torch is installed first and pinned to the CPU build, because
# installing snntorch/tonic before torch makes pip pick a multi-GB CUDA build.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
DEPS   := $(VENV)/.s2sim-deps
CORE   := $(VENV)/.s2sim-core
LINT   := $(VENV)/.s2sim-lint
SOURCES := $(wildcard csrc/*.c csrc/*.h csrc/*.py) CMakeLists.txt

.PHONY: FORCE env build demo test lint sanitize bench emulate docs clean

env: $(DEPS)
build: $(CORE)

# Each step says what it does; pip shows its download bars for the two big installs instead of -q silence.
# STEP prints on stderr.
STEP = @printf '\n== s2sim set-up %s\n' >&2

$(DEPS): pyproject.toml
	$(STEP) "[1/5] virtual environment $(VENV)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(STEP) "[2/5] pip upgrade"
	$(PY) -m pip install -q --upgrade pip
	$(STEP) "[3/5] $(TORCH) (the largest download of the set-up)"
	$(PY) -m pip install --progress-bar on "$(TORCH)"
	$(STEP) "[4/5] build tools (scikit-build-core, cffi, numpy)"
	$(PY) -m pip install -q scikit-build-core cffi numpy
	$(STEP) "[5/5] s2sim with every extra (snntorch, tonic, h5py, matplotlib, dask, pytest, ...), building its C core"
	$(PY) -m pip install --progress-bar on --no-build-isolation -e ".[all]"
	touch $@ $(CORE)
	$(STEP) "done: $(VENV) is ready"

# The editable install maps each Python module to its file once: a module added, moved or removed (e.g. a module
# becoming a subpackage) needs a reinstall, so the list of module files is a prerequisite, rewritten when it changes.
MODULES := $(VENV)/.s2sim-modules
MODULE_LIST := $(sort $(shell find s2sim -name '*.py' -not -path '*/__pycache__/*'))
$(MODULES): FORCE
	@mkdir -p $(VENV); echo '$(MODULE_LIST)' | cmp -s - $@ || echo '$(MODULE_LIST)' > $@
FORCE:

# Rebuild the C core when its sources change (editable install: Python files are used from this folder).
$(CORE): $(DEPS) $(SOURCES) $(MODULES)
	$(STEP) "building the C core (CMake)"
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $@

demo: $(CORE)
	$(VENV)/bin/s2sim demo

test: $(CORE)
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The lint extra's pinned tools; reinstalling the package is how pip installs an extra (the core rebuild is incremental).
$(LINT): $(CORE) pyproject.toml
	$(PY) -m pip install -q --no-build-isolation -e ".[lint]"
	touch $@ $(CORE)

lint: $(LINT)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# C kernel under AddressSanitizer + UndefinedBehaviorSanitizer (see CONTRIBUTING.md).
sanitize: $(DEPS)
	tools/sanitize.sh $(PY)

bench: $(CORE)
	$(PY) tools/bench.py

# The emulated PE against the simulator (needs arm-none-eabi-gcc, newlib, qemu-system-arm; see .ci/run).
emulate: $(CORE)
	$(PY) tools/emulate_pe.py

# The guides and the API reference (Sphinx, docs/conf.py) as HTML in build/docs; any warning fails the build. -E
# rereads every page: autodoc pages do not notice edited docstrings otherwise.
DOCS_DEPS := $(VENV)/.s2sim-docs-deps
$(DOCS_DEPS): $(CORE) pyproject.toml
	$(PY) -m pip install -q --no-build-isolation -e ".[docs]"
	touch $@ $(CORE)

docs: $(DOCS_DEPS)
	$(PY) -m sphinx -W --keep-going -E -q -b html docs build/docs
	@echo "wrote build/docs/index.html"

clean:
	rm -rf build $(VENV) s2sim/_core*.so
