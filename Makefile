# The README's commands. `make run` and `make test` each set everything up first (a .venv with
# requirements.txt and labkit installed editable), so each works on its own on a fresh clone.
PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?= smoke
NB      ?=
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: setup run test report clean-runs

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

## the main job: execute the notebooks headlessly (papermill) and write runs/$(PROFILE)/report.md
run: setup
	MPLBACKEND=Agg $(VENV)/bin/labkit run $(NB) --profile $(PROFILE)

## unit tests + notebook checks (nbval) + a papermill-driven `labkit run`
test: setup
	MPLBACKEND=Agg $(PY) -m pytest

report: setup
	$(VENV)/bin/labkit report --profile $(PROFILE)

clean-runs:
	rm -rf runs/
