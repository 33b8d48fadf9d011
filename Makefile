# Two commands a newcomer needs: `make test` and `make demo`.
# Each one sets up .venv from nothing first (idempotent; see tools/setup_env.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_HASH := $(shell cat requirements.txt pyproject.toml tools/setup_env.sh | sha1sum | cut -c1-12)
STAMP := $(VENV)/.setup-$(SETUP_HASH)
PYTEST_ARGS ?=

# Demo knobs (see README): DATA_ROOT=data/coco/ with the COCO file names
# below (and a COCO config) runs the same job on real data.
DEMO_CONFIG ?= configs/pep/pep_r18_fpn_1200it_synthetic.py
DEMO_WORK_DIR ?= work_dirs/demo
DATA_ROOT ?= data/synthetic/
DEMO_ARGS ?=

.PHONY: setup test demo clean-venv

setup: $(STAMP)

$(STAMP):
	bash tools/setup_env.sh $(VENV)
	rm -f $(VENV)/.setup-* && touch $@

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/demo.py --config $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR) \
		--data-root $(DATA_ROOT) $(DEMO_ARGS)

clean-venv:
	rm -rf $(VENV)
