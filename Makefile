# One target per job. The environment lives in .venv, created here; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := .tools/node_modules/.bin/buf
PROTO_FILES := $(wildcard protos/yikatong/v1/*.proto protos/jingjinji/v1/*.proto)
ARGS ?=

.PHONY: run test bench protos protos-check lint typecheck buf-lint buf-breaking conformance check clean venv

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

# The API may only grow: buf breaking (FILE level) against an earlier commit, the previous one by default.
BREAKING_AGAINST ?= HEAD~1
buf-breaking: $(BUF)
	@if git rev-parse -q --verify "$(BREAKING_AGAINST)^{commit}" >/dev/null; then \
		cd protos && ../$(BUF) breaking --against '../.git#ref=$(BREAKING_AGAINST),subdir=protos' && \
		echo "no breaking change against $(BREAKING_AGAINST)"; \
	else echo "buf breaking: no commit $(BREAKING_AGAINST) to compare with"; fi

# promtool and prometheus (tests/test_prometheus.py) from Debian's package, when missing; needs root. No service
# is started: the install runs under a policy-rc.d that forbids it (containers ship one; if there is none, a
# temporary one is put in place and removed afterwards).
.PHONY: prometheus-install rules-check
POLICY_RC := /usr/sbin/policy-rc.d
prometheus-install:
	@if command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "install Debian's prometheus package (needs root)" >&2; exit 1; fi; \
	set -e; guard=; \
	if [ ! -e $(POLICY_RC) ]; then printf '#!/bin/sh\nexit 101\n' >$(POLICY_RC); chmod 755 $(POLICY_RC); guard=1; fi; \
	trap '[ -z "$$guard" ] || rm -f $(POLICY_RC)' EXIT; \
	apt-get update -qq; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null

# The alert rules, the example scrape configuration and the alerts' unit tests (deploy/prometheus/).
rules-check: prometheus-install
	promtool check rules deploy/prometheus/alerts.yml
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/alerts_test.yml

# What the hub adds to a call, as ratios against a direct-adapter baseline measured in the same run.
bench: .venv/.installed
	PATH=.venv/bin:$$PATH PYTHONPATH=. python tools/bench.py

# The conformance suite against every built-in region and the example fourth region (installed into a temporary
# folder, so the environment is left as it was).
EXAMPLE := examples/guangdong-guangxi-hainan
conformance: .venv/.installed
	@for region in yangtze-delta sichuan-chongqing beijing-tianjin-hebei; do \
		.venv/bin/yikatong adapter check --region $$region || exit 1; done
	@tmp=$$(mktemp -d) && cp -r $(EXAMPLE) $$tmp/src && \
	.venv/bin/python -m pip install -q --no-deps --no-build-isolation --no-index --target $$tmp/site $$tmp/src && \
	PYTHONPATH=$$tmp/site YIKATONG_REGIONS_DIR=regions/config:$(EXAMPLE)/config \
		.venv/bin/yikatong adapter check --region guangdong-guangxi-hainan; rc=$$?; rm -rf $$tmp; exit $$rc

check: lint typecheck buf-lint buf-breaking protos-check rules-check test conformance

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache var
