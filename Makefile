# One target per job. The environment lives in .venv, created here from requirements.lock; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
TOOLS := .tools
UV_VERSION := 0.13.9
UV := $(TOOLS)/uv-$(UV_VERSION)/bin/uv
BUF := $(TOOLS)/buf/node_modules/.bin/buf
BUF_STAMP := $(TOOLS)/buf/.installed
PROTO_FILES := $(wildcard protos/yikatong/v1/*.proto protos/jingjinji/v1/*.proto)
ARGS ?=

.PHONY: run test bench chaos protos protos-check lint typecheck buf buf-lint buf-breaking conformance check clean venv lock

# .venv holds exactly what requirements.lock pins, so it is built afresh (--clear) whenever the lock or pyproject
# changes: the pins with their hashes (pip refuses anything unpinned or unhashed), then this project on top with
# neither dependencies nor a build environment of its own. pip itself is the one the interpreter ships.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check >/dev/null || \
		{ $(BIN)/pip check; echo "$(LOCK) misses what pyproject.toml asks: run make lock" >&2; exit 1; }
	touch $(STAMP)

# requirements.lock from pyproject.toml (with the dev extra), for every platform, with hashes. Pins already in the lock
# are kept while they still fit, so adding a dependency adds only it and what it needs; UPGRADE=1 takes the newest
# release of everything.
lock: $(UV)
	$(UV) pip compile pyproject.toml --extra dev --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' --quiet $(if $(UPGRADE),--upgrade) --output-file $(LOCK)

$(UV):
	$(PYTHON) -m venv $(TOOLS)/uv-$(UV_VERSION)
	$(TOOLS)/uv-$(UV_VERSION)/bin/pip install --quiet uv==$(UV_VERSION)

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

# buf at the version tools/buf/package-lock.json pins, checked against its integrity hashes. Its install script only
# speeds up finding the platform binary, which bin/buf finds without it.
$(BUF_STAMP): tools/buf/package.json tools/buf/package-lock.json
	rm -rf $(TOOLS)/buf && mkdir -p $(TOOLS)/buf && cp $^ $(TOOLS)/buf/
	npm ci --silent --ignore-scripts --no-audit --no-fund --prefix $(TOOLS)/buf
	touch $@

# buf alone (tests/test_cli.py runs `buf curl` against `yikatong up` with it).
buf: $(BUF_STAMP)

buf-lint: $(BUF_STAMP)
	cd protos && ../$(BUF) lint

# The API may only grow: buf breaking (FILE level) against an earlier commit, the previous one by default.
BREAKING_AGAINST ?= HEAD~1
buf-breaking: $(BUF_STAMP)
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

# What the hub costs, against a pass-through proxy and the adapters measured in the same run, each in its own
# process (tools/bench.py says how); ARGS="--soak 600" soaks the hub instead. GRPC_VERBOSITY: the load's channels
# would print an INFO line of grpc's for every call a replica's GOAWAY cancels as its phase ends.
bench: $(STAMP)
	GRPC_VERBOSITY=ERROR PATH=.venv/bin:$$PATH PYTHONPATH=. python tools/bench.py $(ARGS)

# The hub and the sandboxes in their own processes under mixed load, random faults and hub kills, then the hub's books
# reconciled with the regions' (tools/chaos.py); a seeded round of about a minute unless ARGS says otherwise, e.g.
# ARGS="--seconds 600 --seed 7", or ARGS="--replicas 3" for three hub replicas on one PostgreSQL ledger. Exits 1 on
# any difference; logs stay in var/chaos/.
chaos: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH PYTHONPATH=. $(BIN)/python tools/chaos.py $(ARGS)

# The conformance suite against every built-in region and the example fourth region (installed into a temporary
# folder, so the environment is left as it was).
EXAMPLE := examples/guangdong-guangxi-hainan
conformance: $(STAMP)
	@for region in yangtze-delta sichuan-chongqing beijing-tianjin-hebei; do \
		.venv/bin/yikatong adapter check --region $$region || exit 1; done
	@tmp=$$(mktemp -d) && cp -r $(EXAMPLE) $$tmp/src && \
	.venv/bin/python -m pip install -q --no-deps --no-build-isolation --no-index --target $$tmp/site $$tmp/src && \
	PYTHONPATH=$$tmp/site YIKATONG_REGIONS_DIR=regions/config:$(EXAMPLE)/config \
		.venv/bin/yikatong adapter check --region guangdong-guangxi-hainan; rc=$$?; rm -rf $$tmp; exit $$rc

check: lint typecheck buf-lint buf-breaking protos-check rules-check test chaos conformance

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache var
