# Two commands for a fresh machine with Python 3.11+: `make demo` and `make test`.
# Each creates and fills .venv on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo quickstart test test-airflow lint docs bench bench-airflow bench-airflow-triggerer soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "trio-comms needs Python 3.11+, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# compat mode: a plain path entry, which mypy (and any tool that does not run
	# import hooks) can follow to channel/ and actors/.
	$(BIN)/python -m pip install --quiet -e '.[test,lint,triggerer]' --config-settings editable_mode=compat
	@touch $(STAMP)

# The example triggerer: 1,000 triggers, every caller kind, chaos (see README).
demo: $(STAMP)
	$(BIN)/python -m examples.triggerer --triggers 1000 --chaos

quickstart: $(STAMP)
	$(BIN)/python examples/quickstart.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Style and strict types: ruff over the tree, mypy --strict over the packages and
# examples (tests/test_typing.py also type-checks README's examples).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy channel actors trio_comms_airflow examples docs/examples

# The documentation site (docs/): every warning is an error; open docs/_build/html/index.html.
docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]' --config-settings editable_mode=compat
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]' --config-settings editable_mode=compat
	$(BIN)/python -m benchmarks.run

# trio-comms beside the real Airflow classes (TriggerCommsDecoder, the task SDK's
# CommsDecoder), in a venv of its own so that make bench and make test never need Airflow.
AIRFLOW_VENV  := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

$(AIRFLOW_STAMP): pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -e . --config-settings editable_mode=compat \
		'apache-airflow-core==3.3.2' 'apache-airflow-task-sdk==1.3.2'
	@touch $(AIRFLOW_STAMP)

bench-airflow: $(AIRFLOW_STAMP)
	AIRFLOW_HOME=$(CURDIR)/$(AIRFLOW_VENV)/airflow-home $(AIRFLOW_VENV)/bin/python -m benchmarks.airflow

# The real Airflow triggerer with and without trio_comms_airflow (tests/airflow), on
# each release below in a venv of its own; make test never needs Airflow. 3.1.8 needs
# cryptography<46 (51.x breaks its get_fernet()); 3.2.2 needs cadwyn<8 and
# fastapi<0.137 (with cadwyn 9.0 and fastapi 0.165 every Execution API call fails:
# "Model 'TITerminalStatePayload' needs a discriminator field").
TEST_AIRFLOW_VERSIONS := 3.1.8 3.2.2 3.3.2
PINS_3.1.8 := 'cryptography<46'
PINS_3.2.2 := 'cadwyn<8' 'fastapi<0.137'

.venv-airflow-%/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-airflow-$*
	.venv-airflow-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-airflow-$*/bin/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat \
		'apache-airflow==$*' $(PINS_$*)
	@touch $@

# How many requests a second the real airflow triggerer answers, stock and with
# trio-comms (docs/airflow.rst includes benchmarks/results/airflow-triggerer.rst).
bench-airflow-triggerer: .venv-airflow-3.3.2/.installed
	AIRFLOW_HOME=$(CURDIR)/.venv-airflow-3.3.2/airflow-home .venv-airflow-3.3.2/bin/python -m benchmarks.airflow_triggerer

test-airflow: $(foreach v,$(TEST_AIRFLOW_VERSIONS),.venv-airflow-$(v)/.installed)
	@rm -f .airflow-results.jsonl
	for v in $(TEST_AIRFLOW_VERSIONS); do \
		AIRFLOW_HOME=$(CURDIR)/.venv-airflow-$$v/airflow-home HARNESS_RESULTS=$(CURDIR)/.airflow-results.jsonl \
		.venv-airflow-$$v/bin/python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning tests/airflow || exit 1; \
	done
	$(BIN)/python -m tests.airflow.summary .airflow-results.jsonl --rst tests/airflow/results.rst

# Not part of make test: the property tests at the soak profile, then a million requests.
soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest -q -o faulthandler_timeout=0 tests/properties tests/channel/test_hostile_frames.py
	$(BIN)/python -m tests.soak --requests 1000000

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .venv-airflow-* .airflow-results.jsonl .pytest_cache .hypothesis build *.egg-info docs/_build
