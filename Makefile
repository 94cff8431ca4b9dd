# The two commands: `make run` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
AUCTION_HOST ?= 127.0.0.1
AUCTION_PORT ?= 8000
# The same suite against MariaDB and Redis on loopback (services-test, CI).
SERVICES_DATABASE_URL ?= mysql://root@127.0.0.1:3306/auction
SERVICES_REDIS_URL ?= redis://127.0.0.1:6379/15
SERVICES_REDIS_CACHE_URL ?= redis://127.0.0.1:6379/14
PYTEST_ARGS ?=

# What ensure_admin and the demo print as the address to open.
WAGTAILADMIN_BASE_URL ?= http://$(AUCTION_HOST):$(AUCTION_PORT)
export AUCTION_HOST AUCTION_PORT WAGTAILADMIN_BASE_URL

.PHONY: run test services-test browser-test install migrate demo clean messages client client-test

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.base: requirements/base.txt | $(PY)
	$(PIP) install -r requirements/base.txt
	touch $@

$(VENV)/.dev: requirements/dev.txt requirements/base.txt | $(PY)
	$(PIP) install -r requirements/dev.txt
	touch $@

$(VENV)/.services: requirements/services.txt requirements/dev.txt requirements/base.txt | $(PY)
	scripts/system-packages.sh mysql
	$(PIP) install -r requirements/services.txt
	touch $@

# The project's translations (zh-hans), compiled with Debian's gettext.
MESSAGES := locale/zh_Hans/LC_MESSAGES/django.mo
$(MESSAGES): locale/zh_Hans/LC_MESSAGES/django.po | $(VENV)/.base
	scripts/system-packages.sh gettext
	$(PY) manage.py compilemessages -l zh_Hans --ignore=.venv --ignore=var

messages: $(MESSAGES)

install: $(VENV)/.base $(MESSAGES)

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo

## run: migrate, seed the demo, then serve the API, the Wagtail admin and the job cluster (Ctrl-C stops all)
run: migrate
	$(PY) manage.py ensure_admin
	$(PY) manage.py demo
	@echo "API      http://$(AUCTION_HOST):$(AUCTION_PORT)/api/v1/specials"
	@echo "API docs http://$(AUCTION_HOST):$(AUCTION_PORT)/api/v1/docs"
	@echo "Admin    http://$(AUCTION_HOST):$(AUCTION_PORT)/admin/"
	@echo "Live     ws://$(AUCTION_HOST):$(AUCTION_PORT)/ws/v1/live  (README: The live room)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile start

## test: the whole suite on the embedded default (SQLite, database broker)
test: $(VENV)/.dev $(MESSAGES)
	@if command -v chromium >/dev/null 2>&1; then \
		$(PY) -m pytest $(PYTEST_ARGS); \
	else \
		echo "*** chromium is not installed: browser tests left to 'make browser-test' (scripts/system-packages.sh chromium installs it)"; \
		$(PY) -m pytest -m "not browser" $(PYTEST_ARGS); \
	fi

## services-test: the same suite against MariaDB and Redis on 127.0.0.1
services-test: $(VENV)/.services $(MESSAGES)
	scripts/start-services.sh
	DATABASE_URL=$(SERVICES_DATABASE_URL) REDIS_URL=$(SERVICES_REDIS_URL) REDIS_CACHE_URL=$(SERVICES_REDIS_CACHE_URL) $(PY) -m pytest -m "not browser" $(PYTEST_ARGS)

## browser-test: an editor in headless Chromium publishes a special and a lot
browser-test: $(VENV)/.dev $(MESSAGES)
	scripts/system-packages.sh chromium
	$(PY) -m pytest -m browser $(PYTEST_ARGS)

# The mini-program's typed client (clients/miniprogram, TypeScript, npm; Node 20+).
CLIENT := clients/miniprogram
OPENAPI_URL ?=
$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package.json $(CLIENT)/package-lock.json
	cd $(CLIENT) && npm ci --no-fund --no-audit

## client: the OpenAPI document from the code (or a running server's: OPENAPI_URL=...), then the client's types from it
client: $(VENV)/.base $(CLIENT)/node_modules/.package-lock.json
	$(PY) manage.py openapi $(if $(OPENAPI_URL),--url $(OPENAPI_URL))
	cd $(CLIENT) && npm run --silent generate

## client-test: the client's generated types current, type-checked, built, and its tests against a real server
client-test: $(VENV)/.dev $(MESSAGES) $(CLIENT)/node_modules/.package-lock.json
	cd $(CLIENT) && npm run --silent check:generated && npm run --silent typecheck && npm run --silent build && npm test

clean:
	rm -rf $(VENV) var $(CLIENT)/node_modules $(CLIENT)/dist
