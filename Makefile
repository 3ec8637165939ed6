# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run dry-run test lint debian-packages screenshots bench bench-runtime bench-dev-ready bench-events bench-delays bench-live bench-scale bench-peer redis-server clean

# The install compiles the hottest modules with mypyc when it can (docs/install.md); one edited
# since runs them all as Python until they are compiled again, which `install` does here.
install: $(STAMP)
	@$(BIN)/python -c 'import sys, braidflow.compiled as c; sys.exit(c.how_it_runs().stale)' \
		|| $(BIN)/pip install --quiet --no-deps -e .

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/braidflow dev

dry-run: install
	$(BIN)/braidflow dry-run examples/new-hire-approval.yaml \
		--input '{"employee": "ada"}' --answers examples/new-hire-approval.answers.yaml

lint: install
	$(BIN)/ruff check braidflow tests bench setup.py
	$(BIN)/ruff format --check braidflow tests bench setup.py

# The suite runs in WORKERS pytest processes (pytest-xdist), each file's tests in one, each
# process with a broker of its own: most integration tests wait on group joins, timeouts and
# kills, so four processes on two cores ran it in 634 s where two hand-balanced runs side by
# side took 1,090 s (2026-12-07, the same hour). Everything runs on the modules the install
# compiled (docs/install.md); then the engine's and codecs' unit tests run again as pure
# Python (BRAIDFLOW_PURE=1), so that both ways are proven.
WORKERS ?= 4
PURE := tests/unit/engine tests/unit/schemas tests/unit/test_compiled.py
# The packages are fetched while the install compiles (a minute or more each on a new machine).
test:
	@$(MAKE) --no-print-directory -j2 lint debian-packages
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile --durations=15 tests
	BRAIDFLOW_PURE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile -p no:cacheprovider $(PURE)

# Debian packages the suite needs, as `command:package`: chromium drives the dashboard's browser
# tests (tests/integration/dashboard), bubblewrap sandboxes code nodes (docs/format.md#code,
# tests/integration/code_nodes). Those missing are installed here, as root, in one apt-get;
# without them those tests fail, they are never skipped.
DEBIAN_PACKAGES := chromium:chromium bwrap:bubblewrap
debian-packages:
	@missing=""; for each in $(DEBIAN_PACKAGES); do \
		command -v $${each%%:*} >/dev/null || missing="$$missing $${each#*:}"; done; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } \
		|| { echo "missing:$$missing (apt-get install$$missing, as root)"; exit 1; }

screenshots: install debian-packages
	$(BIN)/python -m pytest -q tests/integration/dashboard/screenshots.py


bench: install
	$(BIN)/python bench/engine_bench.py

bench-runtime: install
	$(BIN)/python bench/runtime_bench.py

bench-dev-ready: install
	$(BIN)/python bench/dev_ready_bench.py

bench-events: install
	$(BIN)/python bench/event_bench.py

bench-delays: install
	$(BIN)/python bench/delay_bench.py

bench-live: install
	$(BIN)/python bench/live_bench.py

bench-scale: install
	$(BIN)/python bench/scale_bench.py $(ARGS)

# braidflow beside Celery on Redis (bench/peer_celery.py): Celery and the Redis client go into
# the venv from bench/requirements-peer.txt, never into braidflow's dependencies; Debian's
# redis-server is installed here when missing, as root. `make bench-peer ARGS='--rounds 3'`.
PEER_STAMP := $(VENV)/.bench-peer
$(PEER_STAMP): $(STAMP) bench/requirements-peer.txt
	$(BIN)/pip install --quiet -r bench/requirements-peer.txt
	touch $(PEER_STAMP)

redis-server:
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } \
		|| { echo "redis-server is missing: apt-get install redis-server (as root)"; exit 1; }

bench-peer: $(PEER_STAMP) redis-server
	$(BIN)/python bench/peer_celery.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis .mypy_cache \
		braidflow/_compiled.json
	find braidflow -name '*.so' -delete
