# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
TESTS  := $(VENV)/.installed-tests
VENDOR := public/vendor/socket.io.min.js
DATA   ?= ../shared/data/clinc150/train_val.json
ENGINE ?= classical

.PHONY: run test install bench kb-eval kb-import agent-add key clean

run: $(STAMP) $(VENDOR)
	$(PY) -m app

test: $(TESTS) $(VENDOR)
	HF_HUB_OFFLINE=1 $(PY) -m pytest

install: $(STAMP) $(VENDOR)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $(STAMP)

# Tests also cover the semantic tier: torch's CPU build first, so nothing pulls a CUDA one.
$(TESTS): $(STAMP)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test,semantic]'
	touch $(TESTS)

$(VENDOR): package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p public/vendor
	cp node_modules/socket.io-client/dist/socket.io.min.js $(VENDOR)

bench: $(TESTS)
	$(PY) -m bench.rest_load
	$(PY) -m bench.providers
	$(PY) -m bench.agents_live
	$(PY) -m bench.escalation_eval

kb-eval: $(TESTS)
	HF_HUB_OFFLINE=1 $(PY) -m bench.kb_eval --data $(DATA) --engine $(ENGINE)

kb-import: $(STAMP)
	$(PY) -m services.knowledge.importer $(SRC)

# make agent-add EMAIL=ann@example.com NAME="Ann Lee" ROLE=agent   (asks for the password;
# or pipe it in: printf '%s\n' "$PW" | make agent-add ...)
agent-add: $(STAMP)
	@test -n "$(EMAIL)" -a -n "$(NAME)" || { echo 'usage: make agent-add EMAIL=... NAME=... ROLE=agent|admin' >&2; exit 2; }
	@$(PY) -m services.agents add --email "$(EMAIL)" --name "$(NAME)" --role "$(or $(ROLE),agent)"

key: $(STAMP)
	@$(PY) -m services.crypto

clean:
	rm -rf $(VENV) node_modules public/vendor .pytest_cache
