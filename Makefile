# Two commands on a fresh machine: `make demo` (the quickstart) and `make test` (the test suite).
# Both create .venv when it is missing; torch's CPU wheel is installed first, pinned, when no torch is present.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
STORE  ?= runs
FIGS   ?= figures
QUICKSTART := $(foreach n,1 2 3 4 5 6 7,experiments/000/fig3_$(n).toml)

.PHONY: demo studies test test-all env clean

$(BIN)/genlab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

env: $(BIN)/genlab

demo: env  ## 000 ch. 3 (Figs 3-1..3-7), small profiles: train, store, draw → $(FIGS)/
	$(BIN)/genlab run $(QUICKSTART) --profile small --workers 2 --store $(STORE)
	$(BIN)/genlab figures $(QUICKSTART) --profile small --store $(STORE) --out $(FIGS)

studies: env  ## every study's small profile (000, 002, 003, 004, analysis), then one HTML report → reports/report.html
	$(BIN)/genlab run experiments/*/*.toml --profile small --workers 2 --store $(STORE)
	$(BIN)/genlab report experiments/*/*.toml --profile small --store $(STORE) --out reports/report.html

test: env  ## the suite CI runs (slow checks excluded)
	$(BIN)/python -m pytest -q

test-all: env  ## including @pytest.mark.slow
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(STORE) $(FIGS)
