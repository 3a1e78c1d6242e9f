# Two commands: `make run` (the whole local stack) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pytest-xdist workers for `make test` (written for 2 cores; 0 runs the suite in one process)
TEST_WORKERS ?= 2
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test setup bench clean chromium package deploy deploy-prerequisites

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/python -m devstack

test: $(STAMP) chromium
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# The UI's browser test drives Debian's Chromium; install it when missing and we may.
chromium:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  echo "chromium is missing: the browser test will be skipped"

bench: $(STAMP)
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) build .devstack

# --- AWS (see README "Deploying to AWS") -------------------------------------------------------
# `make package [STAGE=dev|prod]`: build/sam.json (SAM template: functions, both APIs, the
# one-minute rule, tables generated from the PynamoDB models, KMS key, JWT secret, alarms)
# and build/deployment.zip (dependencies built for python3.13 on arm64, less what the Lambda
# runtime provides). `make deploy DEPLOY_BUCKET=<s3 bucket> [STAGE=] [STACK=] [REGION=]
# [PARAMS="Name=value ..."]` uploads it and deploys the stack; needs the AWS CLI and credentials.
STAGE ?= dev
STACK ?= benchmark-scheduler-$(STAGE)
BUILD ?= build
REGION ?=
PARAMS ?=
# Packaging talks to no AWS service; chalice only wants a region to pick the partition.
PACKAGE_REGION := $(or $(REGION),$(AWS_REGION),$(AWS_DEFAULT_REGION),us-east-1)
AWS_ARGS := $(if $(REGION),--region $(REGION))

package: $(STAMP)
	$(BIN)/python -m scripts.package $(STAGE) $(BUILD) $(PACKAGE_REGION)

deploy: deploy-prerequisites package
	aws cloudformation package $(AWS_ARGS) --template-file $(BUILD)/sam.json \
		--s3-bucket $(DEPLOY_BUCKET) --s3-prefix $(STACK) --use-json \
		--output-template-file $(BUILD)/packaged.json
	aws cloudformation deploy $(AWS_ARGS) --template-file $(BUILD)/packaged.json \
		--stack-name $(STACK) --s3-bucket $(DEPLOY_BUCKET) --s3-prefix $(STACK) \
		--parameter-overrides Stage=$(STAGE) $(PARAMS) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset
	aws cloudformation describe-stacks $(AWS_ARGS) --stack-name $(STACK) --output table \
		--query "Stacks[0].Outputs[?OutputKey=='RestApiUrl' || OutputKey=='WebsocketUrl']"

# Checked before packaging, so a missing CLI or bucket fails at once.
deploy-prerequisites:
	@command -v aws >/dev/null || { echo "make deploy needs the AWS CLI (aws) on PATH" >&2; exit 2; }
	@test -n "$(DEPLOY_BUCKET)" || { echo "make deploy needs DEPLOY_BUCKET=<S3 bucket in the stack's region>" >&2; exit 2; }
