# medbench: `make demo` runs the demo batch, `make test` runs the tests.
# Each target creates .venv and installs what it needs on a fresh machine with Python 3.11.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TF_EXTRA ?= cpu
INSTALL_STAMP := $(VENV)/.installed-$(TF_EXTRA)

.PHONY: demo test install clean docker-test

install: $(INSTALL_STAMP)

$(INSTALL_STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[$(TF_EXTRA),test]"
	touch $@

demo: $(INSTALL_STAMP)
	$(BIN)/medbench demo

# Two workers, one test file each (module fixtures are built once); the 25 slowest tests are listed at the end.
test: $(INSTALL_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=25

# Build docker/Dockerfile with podman on a local Debian base and run the demo batch in it (root; not in `test`).
docker-test:
	bash docker/test.sh

clean:
	rm -rf $(VENV) data/demo data/cache models/* logs/*.json logs/*.lock
