# TrustGuard: `make run` to try it, `make test` to check it. Both set up .venv themselves.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEV_ENV := DEBUG=1
# make run serves on 127.0.0.1:$(PORT): PORT=8123 make run
PORT ?= 8000
# Links in emails, SMS and the inbox point at the web process, also from the worker (honcho gives each process
# its own PORT: the worker's and beat's are not the web's).
TRUSTGUARD_SITE_URL ?= http://127.0.0.1:$(PORT)

.PHONY: run test lint typecheck bench migrate seed clean superuser backup restore translations messages

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.run-installed $@

## translations: compile locale/*/LC_MESSAGES/django.po into .mo with Babel (pure Python: no gettext needed)
translations: $(VENV)/.run-installed
	$(DEV_ENV) $(BIN)/python manage.py compile_translations -v0

## messages: collect the marked strings into locale/*/django.po (needs GNU gettext: apt-get install gettext), then compile
messages: $(VENV)/.run-installed
	$(DEV_ENV) $(BIN)/python manage.py makemessages -l fr --no-location --no-obsolete --ignore=.venv --ignore=var \
	  --ignore=tests --ignore=bench --ignore=docs --ignore=deploy --ignore=static
	$(DEV_ENV) $(BIN)/python manage.py compile_translations

migrate: translations
	$(DEV_ENV) $(BIN)/python manage.py migrate --no-input -v0

seed: migrate
	$(DEV_ENV) $(BIN)/python manage.py seed_demo

## run: set up, migrate, seed the demo, start web + Celery worker + beat on 127.0.0.1:$(PORT) (Ctrl-C stops all)
run: seed
	@echo ""
	@echo "TrustGuard is starting:"
	@echo "  dashboard  http://127.0.0.1:$(PORT)/"
	@echo "  admin      http://127.0.0.1:$(PORT)/admin/   (demo operator: ops)"
	@echo "  API docs   http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  health     http://127.0.0.1:$(PORT)/healthz   (503 naming beat until the first heartbeat, a few seconds)"
	@echo "Demo logins are listed above (password and TOTP secret per person)."
	@echo ""
	$(DEV_ENV) PORT=$(PORT) TRUSTGUARD_SITE_URL=$(TRUSTGUARD_SITE_URL) $(BIN)/python -c "$$HONCHO_WARM" start -f Procfile --port $(PORT)

# honcho, except that on Ctrl-C it gives the processes 30 s (not 5) to stop warm before it SIGKILLs them: the
# worker drains, finishes what it runs and exits (a few seconds when idle; see the Procfile).
export define HONCHO_WARM
import sys, honcho.command, honcho.manager
honcho.manager.KILL_WAIT = 30
sys.argv[0] = "honcho"
honcho.command.main()
endef

## test: set up, lint (ruff, import-linter's layers), type-check, run the whole suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)
test: $(VENV)/.dev-installed
	$(DEV_ENV) $(BIN)/python manage.py compile_translations -v0
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy .

## bench: the benchmarks (docs/PERFORMANCE.md) on a scratch PostgreSQL database and Redis; BENCH_ARGS=--quick for a smoke run
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/trustguard_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/15
bench: $(VENV)/.dev-installed
	DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(BIN)/python -m bench $(BENCH_ARGS)

## backup: back up the configured database into var/backups (safe while it runs; docs/BACKUP.md); BACKUP_ARGS="--keep 48"
backup: $(VENV)/.run-installed
	$(DEV_ENV) $(BIN)/python manage.py backup $(BACKUP_ARGS)

## restore: make restore BACKUP=var/backups/<file> [RESTORE_ARGS=--replace], with web, worker and beat stopped
restore: $(VENV)/.run-installed
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=var/backups/<file> [RESTORE_ARGS=--replace]" >&2; exit 2; }
	$(DEV_ENV) $(BIN)/python manage.py restore $(RESTORE_ARGS) "$(BACKUP)"

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache .import_linter_cache

## superuser: create an admin login for the operators' admin
superuser: migrate
	$(DEV_ENV) $(BIN)/python manage.py createsuperuser
