# SimpleCalls — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test smoke install migrate demo messages bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py load_demo

run: demo
	@echo "SimpleCalls on http://127.0.0.1:$(PORT)/ with the PBX simulator on 127.0.0.1:5038 (Ctrl+C stops both)"
	$(PY) manage.py run_embedded --noreload 127.0.0.1:$(PORT)

test: install
	$(PY) -m pytest

# Every production process on its own (daphne, worker, beat, two listeners, the PBX simulator) on PostgreSQL and
# Redis, driven through Chromium: needs DATABASE_URL (postgres://…) and REDIS_URL, like .ci/run. About a minute.
smoke: install
	$(PY) -m pytest tests/smoke -p no:cacheprovider -s

messages: install
	$(PY) manage.py makemessages -l ru -l en --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*'
	$(PY) manage.py compilemessages --ignore '.venv/*'

bench: install
	$(PY) manage.py bench_import
	$(PY) manage.py bench_lookup

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
