# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
TESTS  := $(VENV)/.installed-tests
NODE   := node_modules/.installed
VENDOR := public/vendor/socket.io.min.js public/vendor/chart.umd.min.js
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
DATA   ?= ../shared/data/clinc150/train_val.json
ENGINE ?= classical
PLOT   ?=
# kb-eval also times the engine as it was at this commit (a temporary worktree); BASELINE= skips it
BASELINE ?= 7934f6c
# make test PARALLEL= runs the tests in one process
PARALLEL ?= -n 2 --dist loadfile
# the Redis-heavy tests `make test` runs a second time on a Redis Cluster
CLUSTER_TESTS ?= tests/test_store.py tests/test_sockets.py tests/test_api_chat.py \
	tests/agents/test_desk_api.py tests/test_fanout.py

.PHONY: run test lint lock install bench kb-eval kb-import agent-add key rotate-key migrate-keys clean fleet

run: $(STAMP) $(VENDOR)
	$(PY) -m app

# make fleet N=2 [FLEET_PORT=8080]: N instances (python -m app, each on a free port, one
# Redis from REDIS_URL/.env) behind Debian's nginx with deploy/nginx.conf, unprivileged.
fleet: $(STAMP) $(VENDOR)
	$(PY) -m deploy.fleet --instances $(or $(N),2) --port $(or $(FLEET_PORT),8080)

# Lint first: a finding fails the run before any test starts. A leaked socket or file
# (ResourceWarning) is an error too.
# The last run repeats the Redis-heavy service and API tests on a 3-master Redis Cluster
# the session starts itself (TEST_REDIS=cluster; any test file runs that way, see README).
# Two workers (pytest-xdist, one per core; each file stays on one worker, with its own Redis,
# browser and servers): most tests wait on servers, browsers and timers rather than compute.
test: lint $(VENDOR)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -W error::ResourceWarning $(PARALLEL)
	HF_HUB_OFFLINE=1 TEST_REDIS=cluster $(PY) -m pytest -W error::ResourceWarning $(PARALLEL) $(CLUSTER_TESTS)

# ruff (rules in pyproject.toml), mypy (strict on services/), and Spectral's spectral:oas
# rules over the OpenAPI document exactly as the server serves it.
lint: $(TESTS) $(NODE)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	node_modules/.bin/tsc -p public/sdk/tsconfig.json
	@spec=$$(mktemp --suffix=.json) && $(PY) -m services.contract openapi > $$spec && \
	  node_modules/.bin/spectral lint --quiet --ruleset .spectral.yaml --fail-severity=warn $$spec; \
	  status=$$?; rm -f $$spec; \
	  if [ $$status -eq 0 ]; then echo "spectral: no findings"; fi; exit $$status

# Regenerate both lock files from pyproject.toml (after changing a dependency there).
# pip-compile, not uv: torch's CPU build comes from pip's configured local wheels, which
# only pip sees. The run lock is constrained by the dev lock, so both pin the same versions.
lock: $(TESTS)
	$(VENV)/bin/pip-compile --quiet --upgrade --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --extra test --extra semantic --extra lint --extra otel \
	  -o $(DEV_LOCK) pyproject.toml
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	  --no-emit-index-url --no-emit-find-links --constraint $(DEV_LOCK) \
	  -o $(LOCK) pyproject.toml

install: $(STAMP) $(VENDOR)

# Exactly the locked versions, each checked against its hash; then the project itself.
$(STAMP): $(LOCK) pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet pip==26.3
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	$(PIP) install --quiet --no-deps -e .
	@$(PIP) check >/dev/null || { $(PIP) check; \
	  echo "$(LOCK) is out of date with pyproject.toml: run make lock and commit it" >&2; exit 1; }
	touch $(STAMP)

# Tests also cover the semantic tier: the dev lock pins torch's CPU build (2.13.0+cpu,
# from pip's local wheels), so nothing pulls a CUDA one.
$(TESTS): $(STAMP) $(DEV_LOCK)
	$(PIP) install --quiet --require-hashes -r $(DEV_LOCK)
	@$(PIP) check >/dev/null || { $(PIP) check; \
	  echo "$(DEV_LOCK) is out of date with pyproject.toml: run make lock and commit it" >&2; exit 1; }
	touch $(TESTS)

$(NODE): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE)

# The browser libraries the pages load, from npm at the versions package-lock.json pins.
public/vendor/socket.io.min.js: $(NODE)
	mkdir -p public/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js $@

public/vendor/chart.umd.min.js: $(NODE)
	mkdir -p public/vendor
	cp node_modules/chart.js/dist/chart.umd.min.js $@

bench: $(TESTS)
	$(PY) -m bench.rest_load
	$(PY) -m bench.model_overhead
	$(PY) -m bench.framework_cost
	$(PY) -m bench.sdk_cost
	nice -n 5 $(PY) -m bench.socket_idle
	$(PY) -m bench.socket_rate
	$(PY) -m bench.fleet_load
	$(PY) -m bench.providers
	$(PY) -m bench.agents_live
	$(PY) -m bench.escalation_eval
	$(PY) -m bench.observability

kb-eval: $(TESTS)
	HF_HUB_OFFLINE=1 $(PY) -m bench.kb_eval --data $(DATA) --engine $(ENGINE) \
	  --plot '$(PLOT)' --baseline '$(BASELINE)'

kb-import: $(STAMP)
	$(PY) -m services.knowledge.importer $(SRC)

# make agent-add EMAIL=ann@example.com NAME="Ann Lee" ROLE=agent   (asks for the password;
# or pipe it in: printf '%s\n' "$PW" | make agent-add ...)
agent-add: $(STAMP)
	@test -n "$(EMAIL)" -a -n "$(NAME)" || { echo 'usage: make agent-add EMAIL=... NAME=... ROLE=agent|admin' >&2; exit 2; }
	@$(PY) -m services.agents add --email "$(EMAIL)" --name "$(NAME)" --role "$(or $(ROLE),agent)"

key: $(STAMP)
	@$(PY) -m services.crypto

# SESSION_ENCRYPTION_KEY=<new>,<old> make rotate-key   (online; resumable; see README)
rotate-key: $(STAMP)
	@$(PY) -m services.rotate

# once, instances stopped, when upgrading from 0.x: keys move to the hash-tagged layout
# (ARGS=--dry-run counts only; see README "Redis Cluster and Sentinel")
migrate-keys: $(STAMP)
	@$(PY) -m services.migrate_keys $(ARGS)

clean:
	rm -rf $(VENV) node_modules public/vendor .pytest_cache
