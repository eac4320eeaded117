# Everything a developer or CI runs goes through these targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export TRIAL_BASE_IMAGE ?= trial-base:bookworm

.PHONY: setup venv engine browser base-image test test-fast lint demo bench calibrate clean

setup: engine venv base-image  ## Docker engine, virtualenv, local base image

engine:  ## install and start a Docker engine if none answers (Debian, as root)
	@bash scripts/ensure-docker.sh
	@bash scripts/ensure-host-tools.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(PY) -c "import orchestrator, graders, docker, github, aiohttp" && touch $@

browser:  ## Chromium, for the HTML report test only (the demo does not need it)
	@bash scripts/ensure-host-tools.sh --browser

base-image: engine
	@bash scripts/build-base-image.sh

lint: venv  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: setup browser lint  ## set up, lint, and run the whole suite (what CI runs)
	$(VENV)/bin/pytest -q --durations=15

test-fast: venv  ## unit tests only, no Docker
	$(VENV)/bin/pytest -q -m unit

demo: setup  ## one whole trial, offline: Claude Code on the scripted model, a scripted candidate → collect → grade
	@PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/demo.sh

bench: setup  ## benchmarks, printed as ratios against a baseline measured in the same run; fails on a missed target
	@status=0; $(PY) bench/launch_bench.py || status=1; $(PY) bench/gateway_bench.py || status=1; \
	$(PY) bench/capacity_bench.py || status=1; $(PY) bench/log_growth_bench.py || status=1; exit $$status

calibrate: setup  ## play the calibration corpus through the real agents; Kendall's tau against its known order
	$(PY) -m calibration

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo-home .calibrate-home
