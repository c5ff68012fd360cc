# One target per job. The environment lives in .venv, created here; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := .tools/node_modules/.bin/buf
PROTO_FILES := $(wildcard protos/yikatong/v1/*.proto protos/jingjinji/v1/*.proto)
ARGS ?=

.PHONY: run test protos protos-check lint typecheck buf-lint check clean venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/yikatong up $(ARGS)

test: $(STAMP)
	$(BIN)/pytest -q $(ARGS)

protos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python tools/protogen.py

protos-check: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python tools/protogen.py --check

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1

buf-lint: $(BUF)
	cd protos && ../$(BUF) lint

check: lint typecheck buf-lint protos-check test

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache var
