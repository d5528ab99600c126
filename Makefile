# retirement-guard: `make demo` and `make test` set up everything they need
# (a project-local Python virtualenv with the moto server, the Rust build).

VENV      ?= .venv
PYTHON    ?= python3
MOTO_PIN  ?= moto[server]==5.2.5
BIN       := target/debug/retirement-guard
RELEASE   := target/release/retirement-guard
EVENT     ?= events/manual-sweep.json
ENV       ?= staging

.PHONY: help venv build release test lint fmt unit demo invoke sweep package deploy clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(MOTO_PIN)' boto3
	touch $@

venv: $(VENV)/.installed ## create the local virtualenv with moto[server] and boto3

build: ## debug build of the binary
	cargo build

release: ## optimised, stripped binary (size is reported)
	cargo build --release
	@ls -l $(RELEASE) | awk '{print "release binary:", $$5, "bytes"}'

fmt: ## format the code
	cargo fmt --all

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

test: venv lint ## everything: lint, unit, adapter (aws-smithy-mocks) and end-to-end (moto) tests
	MOTO_VENV=$(abspath $(VENV)) cargo test

demo: venv build ## the story: a retired ES group in a local AWS, repaired by the guard
	VENV=$(abspath $(VENV)) scripts/demo.sh $(BIN)

invoke: build ## run one event against real AWS credentials: make invoke EVENT=events/x.json
	$(BIN) invoke $(EVENT)

sweep: build ## dry-run sweep of the current account/region
	$(BIN) sweep --dry-run

package: ## Lambda artefact for arm64 with cargo-lambda (needs the aarch64 target)
	$(VENV)/bin/pip install --quiet cargo-lambda
	PATH=$(abspath $(VENV))/bin:$$PATH cargo lambda build --release --arm64

deploy: package ## deploy one environment: make deploy ENV=staging (see infra/)
	@test -f infra/$(ENV).json || { echo "no infra/$(ENV).json: the template arrives with the deployment issue"; exit 2; }

clean:
	cargo clean
	rm -rf $(VENV)
