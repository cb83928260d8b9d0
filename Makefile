# One set of entry points for the README, developers and CI.
# `make run` starts the server on the embedded default; `make test` runs every check.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The browser bundle (wire format + zstd), built from the npm lock file and the proto.
WEB_BUNDLE := src/guruconnect/server/web/static/build/wire.js

.PHONY: setup system run test pytest lint typecheck format bench proto clean

setup: $(STAMP) $(WEB_BUNDLE)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(WEB_BUNDLE): package.json package-lock.json proto/guruconnect.proto scripts/build-web.mjs
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build

run: setup
	scripts/run-server.sh

test: lint typecheck pytest

# Debian packages the tests need (Xvfb, xdotool, Chromium); installs only what is missing.
system:
	scripts/setup-system.sh

pytest: setup system
	scripts/run-tests.sh

lint: setup
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

typecheck: setup
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format src tests bench scripts
	$(VENV)/bin/ruff check --fix src tests bench scripts

bench: setup
	$(PY) bench/login_timing.py
	$(PY) bench/relay.py
	$(PY) bench/encoder.py

# Regenerate the wire-format module from proto/guruconnect.proto (commit the result).
proto: setup
	$(PY) -m grpc_tools.protoc -Iproto --python_out=src/guruconnect/protocol \
		--pyi_out=src/guruconnect/protocol proto/guruconnect.proto

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache artifacts node_modules \
		src/guruconnect/server/web/static/build
