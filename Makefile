# eos — developer commands. `make test` is the command CI runs (through .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EOS    := $(BIN)/eos

.PHONY: install stack-up stack-down stack-status test unit integration examples lint bench demo chaos clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

stack-up: install
	$(EOS) stack up

stack-down: install
	$(EOS) stack down

stack-status: install
	$(EOS) stack status

# Unit tests first (fast, no broker), then the integration tests against a real broker
# and registry: the cluster named by EOS_BOOTSTRAP_SERVERS, else the local stack.
test: install
	$(BIN)/pytest tests/unit -q
	@if [ -z "$$EOS_BOOTSTRAP_SERVERS" ]; then $(EOS) stack up; fi
	EOS_TEST_NO_DOCKER=$${EOS_TEST_NO_DOCKER:-1} $(BIN)/pytest tests/integration -v --durations=15
	$(MAKE) --no-print-directory examples

# The example project (examples/orders): its driver unit tests and its kill-and-verify
# integration test, run as a user's project runs them, with eos's pytest plugin.
examples: install
	@if [ -z "$$EOS_BOOTSTRAP_SERVERS" ]; then $(EOS) stack up; fi
	cd examples/orders && EOS_TEST_NO_DOCKER=$${EOS_TEST_NO_DOCKER:-1} $(CURDIR)/$(BIN)/pytest -v

unit: install
	$(BIN)/pytest tests/unit -q

integration: install
	$(BIN)/pytest tests/integration -v

# Exactly-once against at-least-once on the local broker; figures to bench-results/latest.json.
bench: install
	@if [ -z "$$EOS_BOOTSTRAP_SERVERS" ]; then $(EOS) stack up; fi
	$(EOS) bench $(BENCH_ARGS)

# The ledger end to end: topics, 100,000 payments, two processors (one SIGKILLed and
# restarted midway), the verifier and a summary table.
demo: install
	@if [ -z "$$EOS_BOOTSTRAP_SERVERS" ]; then $(EOS) stack up; fi
	$(EOS) demo $(DEMO_ARGS)

# The ledger's fault suite on a private 3-broker stack (ports 29192-29197 and 28081, its
# own run folder): 1,000,000 payments at 2,000/s, 3 processors, 10 processor SIGKILLs,
# 2 SIGSTOPs, 3 broker bounces, a registry restart and a 60 s registry block; then the
# verifier. `CHAOS_ARGS="--payments 20000 --rate 2000 ..."` for a short run.
chaos: install
	$(EOS) chaos $(CHAOS_ARGS)

lint: install
	$(BIN)/ruff check eos tests
	$(BIN)/ruff format --check eos tests
	$(BIN)/mypy eos tests
	$(BIN)/ruff check examples
	$(BIN)/ruff format --check examples
	cd examples/orders && MYPYPATH=$(CURDIR) $(CURDIR)/$(BIN)/mypy --strict orders tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bench-results
