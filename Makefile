# One set of entry points for the README, developers and CI.
# `make run` starts the server on the embedded default; `make test` runs every check.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make run` installs only what the server needs at run time (no dev or test extras).
RUN_STAMP := $(VENV)/.installed-runtime
# The browser bundle (wire format + zstd), built from the npm lock file and the proto.
# Committed, so `make run` needs no Node; `make setup` rebuilds it when its sources change.
WEB_BUNDLE := src/guruconnect/server/web/static/build/wire.js

.PHONY: setup system run test pytest lint typecheck format bench proto clean fuzz-long schema-long load \
	agent-dist

# The npm packages the bundle is built from; the tests rebuild the bundle with them and
# compare it with the committed file.
NODE_STAMP := node_modules/.installed

setup: $(STAMP) $(NODE_STAMP) $(WEB_BUNDLE)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(RUN_STAMP) $(STAMP)

$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

$(WEB_BUNDLE): package.json package-lock.json proto/guruconnect.proto scripts/build-web.mjs | $(NODE_STAMP)
	npm run --silent build

run: $(RUN_STAMP)
	scripts/run-server.sh

# The single-file Linux agent (PyInstaller). Inputs: AGENT_VERSION (default: the package's),
# AGENT_RELEASE_KEYS (a file of release public keys to embed), AGENT_SERVER (default
# --server), AGENT_DIST (output, default dist/guruconnect-linux-x86_64). Cached under
# ~/.cache/guruconnect-build by a hash of the sources and these values.
agent-dist: setup
	$(PY) scripts/build_agent.py

test: lint typecheck pytest

# Debian packages the tests need (Xvfb, xdotool, Chromium); installs only what is missing.
system:
	scripts/setup-system.sh

pytest: setup system
	scripts/run-tests.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts packaging
	$(VENV)/bin/ruff format --check src tests bench scripts packaging
	# The browser modules marked `// @ts-check`, against their JSDoc types (tsconfig.json).
	npx --no-install tsc -p tsconfig.json

typecheck: setup
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: setup
	$(PY) bench/login_timing.py
	$(PY) bench/relay.py
	$(PY) bench/encoder.py
	$(PY) bench/h264.py
	$(PY) bench/latency.py --quick

# The security fuzzers with a long, random budget (CI runs a small fixed one). Raise
# FUZZ_EXAMPLES for a deeper hunt; a failure prints the example that reproduces it.
FUZZ_EXAMPLES ?= 5000
fuzz-long: setup
	GURUCONNECT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) scripts/run-tests.sh --timeout 0 \
		tests/security/test_fuzz_handlers.py tests/security/test_fuzz_credentials.py

# schemathesis against the live API with many more examples per operation than CI's.
SCHEMA_EXAMPLES ?= 200
schema-long: setup
	GURUCONNECT_SCHEMA_EXAMPLES=$(SCHEMA_EXAMPLES) scripts/run-tests.sh --timeout 0 \
		tests/security/test_api_schema.py

# One node under load: 500 idle agents, 10 streaming sessions, abusers alongside (CI runs
# 50 agents and 2 sessions in tests/security/test_load.py).
load: setup
	$(PY) bench/load.py --agents 500 --sessions 10 --seconds 20

# Regenerate the wire-format module from proto/guruconnect.proto (commit the result).
proto: setup
	$(PY) -m grpc_tools.protoc -Iproto --python_out=src/guruconnect/protocol \
		--pyi_out=src/guruconnect/protocol proto/guruconnect.proto

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache artifacts node_modules
