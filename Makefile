# The two commands a newcomer needs (README): `make lab` and `make test`.
# Both install what they need first (scripts/bootstrap.sh) and are quick when
# everything is already there.

SHELL      := /bin/bash
VENV       := .venv
BIN        := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Molecule scenarios `make test` runs (side by side).
SCENARIOS  ?= default cluster rebuild
# One scenario for daily work: make scenario S=default
S          ?= default

.PHONY: help bootstrap bootstrap-venv lab lab-down test lint unit check docs molecule scenario converge verify bench clean

help:
	@echo "make lab        deploy the whole system into a local test host and print how to reach it"
	@echo "make lab-down   remove the lab host"
	@echo "make test       lint, unit tests, then every Molecule scenario (what CI runs)"
	@echo "make lint       ansible-lint (production profile) and yamllint"
	@echo "make unit       the filter plugins' unit tests and the inventory check's tests"
	@echo "make check INV=inventories/NAME   check an inventory on this machine, touching no host"
	@echo "make docs       write docs/reference/variables.md from the roles' argument specs"
	@echo "make scenario S=NAME   one Molecule scenario, full test sequence"
	@echo "make converge S=NAME / make verify S=NAME   keep a scenario's host up while working"

# Everything: Debian packages, Docker engine, base image, browser, venv.
bootstrap:
	@bash scripts/bootstrap.sh

# Only the Python venv: what lint, unit and check need.
bootstrap-venv:
	@bash scripts/bootstrap.sh venv

lab: bootstrap
	@bash scripts/lab.sh up

lab-down:
	@bash scripts/lab.sh down

test: bootstrap lint unit molecule

lint: bootstrap-venv
	yamllint -s .
	ansible-lint -q

# tests/check runs the inventory check on broken copies of the lab inventory.
unit: bootstrap-venv
	pytest -q tests/unit tests/check

# The inventory check alone (docs/operator-guide.md, step 3): yamllint, then
# playbooks/preflight.yml with a local connection. No Docker, no host.
INV ?= inventories/lab
check: bootstrap-venv
	@bash scripts/check.sh $(INV)

# docs/reference/variables.md, from every role's meta/argument_specs.yml
# (make unit fails when it is not current).
docs: bootstrap-venv
	python scripts/docs-variables.py

# The scenarios run side by side, each on its own test network; each one's
# output is printed whole when it ends (scripts/scenarios.sh).
molecule: bootstrap
	@bash scripts/scenarios.sh $(SCENARIOS)

scenario: bootstrap
	@$(MAKE) --no-print-directory molecule SCENARIOS=$(S)

converge: bootstrap
	molecule converge -s $(S)

verify: bootstrap
	molecule verify -s $(S)

# The accounts sync at N = 1,000 ... 50,000 against a per-account loop, on its
# own container (bench/accounts --help; ARGS=--quick). `make test` runs only a
# smoke run of each bench (docs/benchmarks.md).
.PHONY: bench-accounts
bench-accounts: bootstrap
	$(BIN)/python bench/accounts $(ARGS)

clean: lab-down
	rm -rf $(VENV) .lab artifacts
