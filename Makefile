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

# The Android demo's Java core is tested on the JVM with JUnit 4 from Debian (needs root, as in CI);
# the app's manifest, resources and sources are built with Debian's aapt against the Android API 23
# framework jar from Debian's archive (pinned by sha256; Google's SDK repositories are unreachable).
JUNIT := /usr/share/java/junit4.jar
AAPT := /usr/bin/aapt
ANDROID_JAR := build/android/android-23.jar

$(JUNIT):
	command -v javac >/dev/null || { echo "javac (JDK 17) is required for the Java tests" >&2; exit 1; }
	apt-get update -qq && apt-get install -y -qq junit4 >/dev/null

$(AAPT): | $(JUNIT)
	apt-get install -y -qq aapt >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq aapt >/dev/null; }

$(ANDROID_JAR): scripts/fetch_android_platform.py
	$(PYTHON) scripts/fetch_android_platform.py --out $@

setup: $(VENV)/.installed $(JUNIT) $(AAPT) $(ANDROID_JAR)

# The main job: export the shipped model to ONNX Runtime (fp32 + int8) behind the parity gate,
# then translate with both. The BLEU part of the gate runs when the Multi30k data is present.
DATA ?= ../shared/data/multi30k
ARTIFACTS := artifacts/lingolite-tiny-multi30k-onnx

demo: $(VENV)/.installed
	$(PY) -m export.onnx --checkpoint pretrained/lingolite-tiny-multi30k --out $(ARTIFACTS) \
		--force $(if $(wildcard $(DATA)),--data $(DATA))
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src en --tgt de \
		"A little girl climbs into a wooden playhouse." "Two dogs play in the snow."
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src en --tgt fr --int8 \
		"A little girl climbs into a wooden playhouse." "Two dogs play in the snow."
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src de --tgt en --int8 --beams 4 \
		"Ein Mann fährt Fahrrad auf der Straße."

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Tests and docstring examples, with line coverage of lingolite/, export/ and runtime/ (the floor
# is fail_under in pyproject.toml).
test: lint
	$(PY) -m pytest -q --cov --cov-report=term
