# Two commands a newcomer needs: `make test` and `make demo`.
# Each one sets up .venv from nothing first (idempotent; see tools/setup_env.sh).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SETUP_HASH := $(shell cat requirements.txt requirements/*.txt pyproject.toml tools/setup_env.sh | sha1sum | cut -c1-12)
STAMP := $(VENV)/.setup-$(SETUP_HASH)
PYTEST_ARGS ?=

# Demo knobs (see README): DATA_ROOT=data/coco/ with the COCO file names
# below (and a COCO config) runs the same job on real data.
# DEMO_CONFIG is the recommended PEP recipe (configs/pep/README.md).
DEMO_CONFIG ?= configs/pep/pep_r18_fpn_1200it_synthetic.py
DEMO_WORK_DIR ?= work_dirs/demo
DATA_ROOT ?= data/synthetic/
DEMO_ARGS ?=

.PHONY: setup test demo mutation mutation-summary clean-venv

setup: $(STAMP)

$(STAMP):
	bash tools/setup_env.sh $(VENV)
	rm -f $(VENV)/.setup-* && touch $@

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/demo.py --config $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR) \
		--data-root $(DATA_ROOT) $(DEMO_ARGS)

# Mutation testing of mmdet_pep/models/ against tests/test_models/ (not part
# of `make test` or CI; incremental: mutmut re-tests what changed). Writes
# docs/mutation/README.md; fails if a surviving mutant is neither killed nor
# argued equivalent in docs/mutation/equivalent.txt, or the kill rate is
# below 85%.
mutation: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/mutation.txt
	$(VENV)/bin/mutmut run --max-children $$(nproc)
	$(MAKE) mutation-summary

mutation-summary:
	$(PY) tools/analysis_tools/mutation_summary.py

clean-venv:
	rm -rf $(VENV)
