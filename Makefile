# One command per chore; CI runs `make test` through .ci/run.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# Claude Code for its integration test (tests/integration/test_claude_code.py), from npm, pinned;
# --ignore-scripts: the platform binary comes as an optional package, nothing runs at install.
CLAUDE_CODE_VERSION := 2.1.197
CLAUDE_CODE_DIR := $(VENV)/claude-code
CLAUDE_CODE_STAMP := $(CLAUDE_CODE_DIR)/.installed-$(CLAUDE_CODE_VERSION)
# jsii (under aws-cdk-lib) warns at length about Node 20's end of life; CI's stock Node is 20.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install serve simulator test lint typecheck synth lock bench clean claude-code

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -r requirements-dev.txt
	$(PIP) install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

claude-code: $(CLAUDE_CODE_STAMP)

$(CLAUDE_CODE_STAMP):
	npm install --silent --no-audit --no-fund --ignore-scripts --prefix $(CLAUDE_CODE_DIR) \
		@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION)
	touch $(CLAUDE_CODE_STAMP)

serve: install
	$(VENV)/bin/mantle-gateway serve

simulator: install
	$(VENV)/bin/mantle-gateway serve --upstream simulator

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

synth: install
	$(PY) app.py

# The Lambda bundle's hashed lock, resolved for python3.13 / arm64 (infra/lock.py): run it after
# changing requirements.txt and commit both.
lock: install
	$(PY) -m infra.lock

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) cdk.out .build .pytest_cache .mypy_cache .ruff_cache
