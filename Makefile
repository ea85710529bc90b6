# Everything a developer or CI runs. `make test` and `make demo` work on a fresh clone:
# each creates the virtual environments it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12; tests, mypy and `sam build` use the same interpreter.
# pyenv (as on this project's machines) is asked first, then PATH.
PY_VERSION := 3.12
export PYENV_VERSION ?= $(shell pyenv versions --bare 2>/dev/null | grep -E '^$(PY_VERSION)\.[0-9]+$$' | tail -1)
PYTHON := $(shell (pyenv which python$(PY_VERSION) 2>/dev/null) || command -v python$(PY_VERSION))
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

UV_VERSION := 0.13.8
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
UV := .tools/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SAM := .tools/sam/bin/sam
CHECKOV := .tools/checkov/bin/checkov

.PHONY: help setup test test-under-load lint types template-check unit demo deploy bench \
        bench-latency cost layer-requirements schemas clean

help:
	@echo "make test   set up, then lint, types, template checks and the whole test suite"
	@echo "make demo   set up, then play the monitor's story on the local stack"
	@echo "make deploy sam build, then sam deploy (--guided the first time) with your AWS credentials"
	@echo "make bench  benchmarks (not part of the suite)"
	@echo "make bench-latency  detection latency, deployed topology vs the old one, real clock (~3 min)"
	@echo "make cost   monthly AWS cost from counted operations, new design vs old (list prices)"
	@echo "make test-under-load  the integration and end-to-end tests beside two CPU burners"
	@echo "make schemas  rewrite the event schema registry in template.yaml from the event models"

$(UV):
	@test -n "$(PYTHON)" || { echo "python$(PY_VERSION) not found: install it (pyenv install $(PY_VERSION))" >&2; exit 1; }
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet uv==$(UV_VERSION)

$(BIN)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

# aws-sam-cli pins its own boto3: it lives in a venv of its own.
$(SAM): $(UV)
	$(UV) venv --quiet --python $(PYTHON) .tools/sam
	$(UV) pip install --quiet --python .tools/sam/bin/python aws-sam-cli==$(SAM_CLI_VERSION)

# checkov pins an older boto3 than the runtime's: it too has a venv of its own.
$(CHECKOV): $(UV)
	$(UV) venv --quiet --python $(PYTHON) .tools/checkov
	$(UV) pip install --quiet --python .tools/checkov/bin/python checkov==$(CHECKOV_VERSION)

setup: $(BIN)/.synced

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup
	$(BIN)/mypy

# The schema registry block of template.yaml, one JSON Schema per event, from
# rollout_monitor.events; tests/unit/test_event_schemas.py fails until this is rerun.
schemas: setup
	$(BIN)/python -m rollout_monitor_local.schemas --write

# The layer's requirements are exported from the lock; a drift fails the check.
layer-requirements: $(UV)
	$(UV) export --locked --no-dev --no-hashes --no-emit-project --no-header --no-annotate \
	    --format requirements-txt -o layers/shared/requirements.txt --quiet

template-check: setup $(SAM) $(CHECKOV)
	$(UV) export --locked --no-dev --no-hashes --no-emit-project --no-header --no-annotate \
	    --format requirements-txt --quiet | diff -u layers/shared/requirements.txt - \
	    || { echo "layers/shared/requirements.txt is stale: run make layer-requirements" >&2; exit 1; }
	$(BIN)/cfn-lint template.yaml
	$(CHECKOV) --config-file .checkov.yaml  # skipped checks and their reasons: .checkov.yaml
	$(SAM) validate --lint --region us-east-1
	$(SAM) local generate-event cloudwatch scheduled-event | diff -u events/sam-scheduled-event.json - \
	    || { echo "events/sam-scheduled-event.json is not SAM CLI's sample: regenerate it with" \
	        "$(SAM) local generate-event cloudwatch scheduled-event > events/sam-scheduled-event.json" >&2; exit 1; }
	$(SAM) build --region us-east-1 --build-dir .aws-sam/build --cached --parallel

unit: setup
	$(BIN)/pytest -q -n 2

test: lint types template-check unit

# The tests that touch moto, servers and the local stack, with two CPU-burning processes beside
# them (this machine has 2 cores): a test that races the wall clock fails here, not on a laptop.
# Then the concurrent-duplicate test, 50 times in a row, under the same load.
test-under-load: setup
	scripts/under-load $(BIN)/pytest -q -n 2 tests/integration tests/faults tests/e2e
	scripts/under-load $(BIN)/pytest -q -n 2 --count 50 \
	    tests/integration/test_deploy.py::test_concurrent_duplicates_deploy_once

demo: setup
	$(BIN)/rollout-monitor local

# The first deploy is guided: while samconfig.toml has no parameter_overrides, `sam deploy
# --guided` asks for the parameters (CerebrasApiKeySecretArn has no default) and the region, and
# saves them there; every later run deploys with them. Credentials and region are checked
# locally first, so a machine without them stops with one line, not a traceback.
deploy: setup $(SAM)
	$(SAM) build
	@$(BIN)/python -m rollout_monitor_local.preflight
	@if grep -Eq '^[[:space:]]*parameter_overrides[[:space:]]*=' samconfig.toml; then \
	    echo "$(SAM) deploy"; $(SAM) deploy; \
	else \
	    echo "$(SAM) deploy --guided  (first deploy: your answers are saved to samconfig.toml)"; \
	    $(SAM) deploy --guided; \
	fi

bench: setup
	$(BIN)/python -m benchmarks

# Each fails if the deployed design misses its target (p95 detection <= 12 s, nothing missed;
# idle month <= $0.50, a busy minute <= 5 billed poller seconds).
bench-latency: setup
	$(BIN)/python -m benchmarks.latency

cost: setup
	$(BIN)/python -m benchmarks.cost

clean:
	rm -rf .venv .tools .aws-sam .pytest_cache .mypy_cache .ruff_cache
