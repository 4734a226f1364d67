# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The Android demo's Java core is tested on the JVM with JUnit 4 from Debian (needs root, as in CI).
JUNIT := /usr/share/java/junit4.jar

$(JUNIT):
	command -v javac >/dev/null || { echo "javac (JDK 17) is required for the Java tests" >&2; exit 1; }
	apt-get update -qq && apt-get install -y -qq junit4 >/dev/null

setup: $(VENV)/.installed $(JUNIT)

demo: $(VENV)/.installed
	$(PY) -m lingolite.demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q
