# retirement-guard: `make demo` and `make test` set up everything they need
# (a project-local Python virtualenv with the moto server, the Rust build).

VENV      ?= .venv
PYTHON    ?= python3
MOTO_PIN  ?= moto[server]==5.2.5
# CloudWatch speaks RPC v2 CBOR to the Rust SDK; tests/moto/realaws.py answers it.
CBOR_PIN  ?= cbor2==6.3.0
BIN       := target/debug/retirement-guard
RELEASE   := target/release/retirement-guard
EVENT     ?= events/manual-sweep.json
ENV       ?= staging
DEPLOY_BUCKET ?=
STACK     ?= retirement-guard-$(ENV)

.PHONY: help venv build release test lint fmt fuzz demo invoke sweep infra-check realism-check package deploy clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(VENV)/.installed: Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(MOTO_PIN)' boto3 '$(CBOR_PIN)'
	touch $@

venv: $(VENV)/.installed ## create the local virtualenv with moto[server] and boto3

build: ## debug build of the binary (with the test build's SDK features, so `make test` reuses its SDK)
	cargo build --features testing

release: ## optimised, stripped binary (size is reported)
	cargo build --release
	@ls -l $(RELEASE) | awk '{print "release binary:", $$5, "bytes"}'

fmt: ## format the code
	cargo fmt --all

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

test: venv lint infra-check realism-check ## everything: lint, infra checks, the local AWS's self-test, unit, adapter (aws-smithy-mocks) and end-to-end tests
	MOTO_VENV=$(abspath $(VENV)) cargo test

realism-check: venv ## self-test of the local AWS (tests/moto/realaws.py) against the AWS behaviours it follows (about 1 min)
	$(VENV)/bin/python tests/moto/test_realaws.py

fuzz: ## bad-input properties: 100,000 cases each over the intake, 10,000 through the whole handler (slow: 15-30 min)
	PROPTEST_CASES=100000 FUZZ_HANDLER_CASES=10000 cargo test --test integration fuzz:: -- --nocapture

demo: venv build ## the story: a retired ES group in a local AWS, repaired by the guard
	VENV=$(abspath $(VENV)) scripts/demo.sh $(BIN)

invoke: build ## run one event against real AWS credentials: make invoke EVENT=events/x.json
	$(BIN) invoke $(EVENT)

sweep: build ## dry-run sweep of the current account/region
	$(BIN) sweep --dry-run

package: $(VENV)/.installed ## Lambda artefact for arm64 with cargo-lambda (cross-linked by zig from PyPI)
	rustup target add aarch64-unknown-linux-gnu
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2' 'ziglang==0.17.1'
	@kind=$$(test -d target/aarch64-unknown-linux-gnu/release/deps && echo incremental || echo clean); \
	  start=$$(date +%s); \
	  PATH=$(abspath $(VENV))/bin:$$PATH cargo lambda build --release --arm64 && \
	  echo "$$(( $$(date +%s) - start )) $$kind" > target/lambda/retirement-guard/build-seconds
	@ls -l target/lambda/retirement-guard/bootstrap | awk '{print "arm64 artefact (bootstrap):", $$5, "bytes"}'
	@echo "build: $$(cat target/lambda/retirement-guard/build-seconds) (seconds, kind)"

infra-check: ## offline checks of infra/: cfn-lint, checkov, EventBridge patterns, IAM vs code, environments
	scripts/infra-check.sh

deploy: package ## deploy one environment: make deploy ENV=staging DEPLOY_BUCKET=<artefact bucket> (infra/README.md)
	@test -f infra/$(ENV).json || { echo "no infra/$(ENV).json"; exit 2; }
	@test -n "$(DEPLOY_BUCKET)" || { echo "set DEPLOY_BUCKET to an S3 bucket in the target region"; exit 2; }
	@! grep -q '@example.com' infra/$(ENV).json || { echo "replace the example e-mail addresses in infra/$(ENV).json"; exit 2; }
	mkdir -p target/infra
	aws cloudformation package --template-file infra/template.yaml --s3-bucket $(DEPLOY_BUCKET) --s3-prefix $(STACK) --output-template-file target/infra/packaged-$(ENV).yaml
	aws cloudformation deploy --template-file target/infra/packaged-$(ENV).yaml --stack-name $(STACK) --parameter-overrides file://infra/$(ENV).json --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --tags project=retirement-guard environment=$(ENV)

C7N_PIN   ?= c7n==0.9.53
BENCH_ARGS ?=

.PHONY: bench
bench: $(VENV)/.installed ## retirement-guard vs Cloud Custodian (c7n) on the local AWS, writes bench/results.md (not in make test; about 1 h on 2 CPUs, BENCH_ARGS=--quick about 25 min)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check '$(C7N_PIN)'
	cargo build --release
	$(VENV)/bin/python bench/bench.py --guard $(RELEASE) $(BENCH_ARGS)

SCENARIO  ?= 1000
JOB       ?= notify

.PHONY: profile
profile: $(VENV)/.installed ## where the guard's CPU goes: one sweep under callgrind, instructions by crate and function (SCENARIO=1000 JOB=notify)
	cargo build --profile profiling
	$(VENV)/bin/python bench/profile.py --guard target/profiling/retirement-guard --scenario $(SCENARIO) --job $(JOB)

clean:
	cargo clean
	rm -rf $(VENV) .venv-infra
