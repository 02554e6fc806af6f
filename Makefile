# Two entry points for a fresh machine: `make demo` and `make test`.
# Each creates or refreshes .venv only when pyproject.toml or constraints.txt
# changed since the last install, so repeated runs cost nothing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench sample-data clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		--constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rnncast check sample_data/load_hourly_next_day.parquet --covariates temperature \
		--future-covariates temperature_forecast --holidays US --horizon 24
	$(BIN)/rnncast train sample_data/load_hourly.parquet --covariates temperature \
		--future-covariates temperature_forecast --holidays US --horizon 24 --seed 1 \
		--out demo/load_model
	$(BIN)/rnncast forecast sample_data/load_hourly_next_day.parquet --model demo/load_model \
		--out demo/forecasts.csv
	head -4 demo/forecasts.csv

# Tests run in as many processes as there are cores: most of a test's time is one
# core's (in-process torch keeps one thread) or waits on a subprocess.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check rnncast tests bench scripts
	$(BIN)/ruff format --check rnncast tests bench scripts

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

sample-data: $(STAMP)
	$(BIN)/python scripts/make_sample_data.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis demo
