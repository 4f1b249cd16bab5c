# Two commands on a fresh machine:
#   make demo   set everything up, load the demo people, and call the hotline in the text phone
#   make test   set everything up and run the whole test suite (what CI runs)
# Both are idempotent.

VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup test-setup system-deps demo phone serve test lint diagram clean

# the product alone: all `make demo` needs is Python
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# and the test tools
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

test-setup: $(VENV)/.installed-test system-deps

# graphviz draws the call-flow diagram (ivr12333 graph); PostgreSQL serves its tests; nginx
# runs deploy/nginx-ivr12333.conf in tests/web/test_serving.py; espeak-ng speaks for the web phone
# and `ivr12333 prompts --audio` (GPL: run as a separate program, optional for `make demo`);
# chromium and chromium-driver drive the web phone in tests/tools/test_web_phone.py (offline), with a
# CJK font (fonts-wqy-microhei) so its screenshots show the Chinese.
system-deps:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz) >/dev/null; \
	  else echo "please install graphviz (dot), e.g. sudo apt-get install graphviz"; exit 1; fi; }
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null; \
	  else echo "please install PostgreSQL server binaries, e.g. sudo apt-get install postgresql"; exit 1; fi; }
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx) >/dev/null; \
	  else echo "please install nginx, e.g. sudo apt-get install nginx"; exit 1; fi; }
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng) >/dev/null; \
	  else echo "please install espeak-ng, e.g. sudo apt-get install espeak-ng"; exit 1; fi; }
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 \
	   && [ -d /usr/share/fonts/truetype/wqy ]; } || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	      chromium-driver fonts-wqy-microhei) >/dev/null; \
	  else echo "please install chromium, its driver and a CJK font, e.g. sudo apt-get install" \
	    "chromium chromium-driver fonts-wqy-microhei"; exit 1; fi; }

demo: setup
	$(BIN)/ivr12333 demo
	$(BIN)/ivr12333 call

# the web phone on the demo people: spoken if espeak-ng is installed, shown as text if not
phone: setup
	$(BIN)/ivr12333 phone --open

serve: setup
	$(BIN)/ivr12333 demo
	$(BIN)/ivr12333 serve

lint: test-setup
	$(BIN)/ruff check .
	$(BIN)/mypy

test: test-setup lint
	$(BIN)/pytest -n 2

# redraw the README's call-flow picture from state_machines/hotline.yaml (graphviz, no database)
diagram: $(VENV)/.installed
	@command -v dot >/dev/null 2>&1 || { \
	  echo "please install graphviz (dot), e.g. sudo apt-get install graphviz"; exit 1; }
	IVR_FLOWS_DIR= IVR_PROMPTS_DIR= $(BIN)/ivr12333 graph -o docs/call-flow.svg

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
