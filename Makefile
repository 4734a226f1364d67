# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-plain-clone lint lint-python check web

# Ranges in pyproject.toml, exact tested versions in constraints.txt.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
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

# The browser demo (web_demo/): its npm packages exactly as web_demo/package-lock.json pins them, and
# Debian's chromium, which its real-browser test drives through playwright-core (no browser download).
CHROMIUM := /usr/bin/chromium
WEB_MODULES := web_demo/node_modules/.package-lock.json

$(CHROMIUM): | $(JUNIT)
	apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

$(WEB_MODULES): web_demo/package.json web_demo/package-lock.json
	command -v npm >/dev/null || { echo "node and npm (Node >= 20) are required for web_demo/" >&2; exit 1; }
	npm ci --prefix web_demo --no-audit --no-fund
	touch $@

setup: $(VENV)/.installed $(JUNIT) $(AAPT) $(ANDROID_JAR) $(CHROMIUM) $(WEB_MODULES)

# The main job: export the shipped general model to ONNX Runtime (fp32 + int8) behind the parity
# gate, then translate with both. The BLEU part of the gate runs when the Multi30k data is present
# (test_2016_flickr in the model's four directions).
DATA ?= ../shared/data/multi30k
MODEL ?= pretrained/lingolite-tiny-general
ARTIFACTS := artifacts/$(notdir $(MODEL))-onnx

demo: $(VENV)/.installed
	$(PY) -m export.onnx --checkpoint $(MODEL) --out $(ARTIFACTS) \
		--force $(if $(wildcard $(DATA)),--data $(DATA))
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src en --tgt de \
		"Where is the train station?" "I would like a cup of coffee." "Two dogs play in the snow."
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src en --tgt fr --int8 --beams 4 \
		"Where is the train station? Two dogs play in the snow."
	$(PY) -m runtime.translate --artifacts $(ARTIFACTS) --src de --tgt en --int8 --beams 4 \
		"Ein Mann fährt Fahrrad auf der Straße."

# The browser demo of the `make demo` export: build the static site and serve it on 127.0.0.1:8000.
SITE := build/web

web: $(VENV)/.installed $(WEB_MODULES)
	test -f $(ARTIFACTS)/manifest.json || $(MAKE) demo
	$(PY) -m export.web --artifacts $(ARTIFACTS) --out $(SITE) --force
	$(PY) -m export.web --serve $(SITE)

lint: setup lint-python

lint-python: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# pytest on two xdist workers (the machine's two cores), each taking whole test modules so that a
# module's exports are built once, with one OpenMP/torch thread each; tests/conftest.py hands out
# the longest modules first and tests/export_cache.py traces each graph once per run.
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# Tests and docstring examples, with line coverage of lingolite/, export/ and runtime/ (the floor
# is fail_under in pyproject.toml).
# Both pytest runs share one export cache, emptied first (its keys hold no source code).
EXPORT_CACHE := build/test-export-cache

test: lint
	rm -rf $(EXPORT_CACHE)
	LINGOLITE_EXPORT_CACHE=$(EXPORT_CACHE) $(PYTEST) --cov --cov-report=term --durations=30
	LINGOLITE_EXPORT_CACHE=$(EXPORT_CACHE) $(MAKE) --no-print-directory test-plain-clone

# The edit loop: ruff, mypy and the tests not marked `slow` (no export, training, JVM or browser),
# in about 75 s on two cores; `make test` runs everything.
check: lint-python
	$(PYTEST) --no-cov -m "not slow"

# A clone without the sibling ../shared folder: the tests that read shared data, with its path
# pointing nowhere (they use the committed sample in tests/data or skip what needs the full set).
test-plain-clone: $(VENV)/.installed
	LINGOLITE_SHARED_DATA=/nonexistent $(PY) -m pytest -q --no-cov -p no:cacheprovider \
		tests/test_data.py tests/test_pretrained.py tests/test_android_java.py
