# GQR Operator — developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= operator,serve,train,dev
TESTENV_DIR ?= $(CURDIR)/.testenv
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

##@ General
.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	/^[a-zA-Z0-9_.-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Set-up
# Every install comes from uv.lock (hashes included) through a pinned uv (requirements/uv.txt),
# bootstrapped into $(UV_VENV). pyproject.toml's ranges are for installing the package into an
# environment of your own; `make lock` is the only way the pinned versions move.
UV_VENV ?= .venv-uv
UV := $(UV_VENV)/bin/uv
comma := ,
UV_EXTRAS := $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e))
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

$(UV): requirements/uv.txt
	test -x $(UV_VENV)/bin/pip || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install -q --require-hashes --no-deps -r requirements/uv.txt
	touch $@

$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --locked --python $(PYTHON) $(UV_EXTRAS) || { \
	  echo "make dev: installing uv.lock failed (if pyproject.toml changed: make lock, then make test)" >&2; exit 1; }
	touch $@

.PHONY: dev
dev: $(VENV)/.installed ## Create .venv from uv.lock: the project editable with all extras (operator, serve, train, dev).

.PHONY: lock
lock: $(UV) ## Re-resolve uv.lock after a pyproject.toml edit and export requirements/*.txt; UPGRADE=1 moves every pin, UPGRADE=pkg one. Then `make test`.
	UV=$(UV) bash requirements/lock.sh $(if $(filter 1,$(UPGRADE)),--upgrade,$(if $(UPGRADE),--upgrade-package $(UPGRADE)))

.PHONY: lock-check
lock-check: $(UV) ## Fail when pyproject.toml, uv.lock and requirements/*.txt disagree.
	UV=$(UV) bash requirements/lock.sh --check

.PHONY: testenv
testenv: ## Build (or reuse from cache) the control plane binaries from Go modules.
	bash testenv/build.sh

.PHONY: testenv-up
testenv-up: dev testenv ## Start the test control plane in .testenv (reuse it: export GQR_TESTENV_DIR=.testenv).
	$(PY) testenv/testenv.py up --dir $(TESTENV_DIR)

.PHONY: testenv-down
testenv-down: ## Stop the control plane started by testenv-up and remove its state.
	$(PY) testenv/testenv.py down --dir $(TESTENV_DIR)

##@ Run
.PHONY: demo
demo: dev ## The local demo on embedded defaults (simulate, COR, CTR, iterative DPO, A/B) -> ./gqr-demo/
	$(VENV)/bin/gqr demo --out gqr-demo

.PHONY: bench-operator
bench-operator: dev testenv ## 100 GQRDeployments at once against the test control plane.
	$(PY) benchmarks/bench_operator_scale.py --count 100

##@ Quality
.PHONY: test
test: dev testenv ## Run all tests (unit + integration + the end-to-end loop, on the real control plane).
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: dev ## Run only the fast unit tests.
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

.PHONY: test-e2e
test-e2e: dev testenv ## Run only the end-to-end loop (bootstrap + one regular cycle: helm, operator, Jobs, canaries, users).
	$(VENV)/bin/pytest -m e2e -s $(PYTEST_ARGS)

.PHONY: lint
lint: dev lock-check crd-check ## The lock and CRD checks, ruff (lint + format check) and the import-linter layering contracts.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

.PHONY: typecheck
typecheck: dev ## mypy (strict on gqr_operator).
	$(VENV)/bin/mypy contracts/gqr_contracts operator/gqr_operator serving/gqr_serving training/gqr_training

.PHONY: fmt
fmt: dev ## Format and auto-fix.
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The CRD is generated from the spec models (operator/gqr_operator/models), like controller-gen
# does from Go types; its chart copy and the field reference follow it.
CRD_ARGS := --out crds --doc docs/reference/gqrdeployment.md

.PHONY: crd
crd: dev ## Regenerate crds/ from the spec models, its chart copy and docs/reference/gqrdeployment.md.
	$(PY) -m gqr_operator.crdgen $(CRD_ARGS)
	bash charts/sync-crds.sh

.PHONY: crd-check
crd-check: dev ## Fail when the committed CRD, its chart copy or the field reference is not what the models generate.
	$(PY) -m gqr_operator.crdgen $(CRD_ARGS) --check
	bash charts/sync-crds.sh --check

.PHONY: schemas
schemas: dev ## Export the record JSON Schemas to schemas/.
	$(PY) -m gqr_serving.records --out schemas

##@ Packaging
REGISTRY ?= ghcr.io/gqr-dev
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
# Every target of images/Dockerfile; `make images IMAGES="operator gateway"` builds a few.
IMAGES ?= $(shell source images/targets.sh && image_targets)
DOCKER ?= podman

.PHONY: images
images: ## Build the images with buildah (sets up podman/buildah, a local base image, a cached wheelhouse): $(REGISTRY)/gqr-<name>:$(VERSION).
	REGISTRY=$(REGISTRY) VERSION=$(VERSION) bash images/build.sh $(IMAGES)

.PHONY: images-smoke
images-smoke: dev testenv ## Run each built image for real with podman (operator on testenv, gateway, trainer, predictor).
	REGISTRY=$(REGISTRY) VERSION=$(VERSION) $(PY) images/smoke.py $(IMAGES)

.PHONY: push-images
push-images: images ## Push the images to $(REGISTRY).
	@for i in $(IMAGES); do $(DOCKER) push $(REGISTRY)/gqr-$$i:$(VERSION) || exit 1; done

.PHONY: check-images
check-images: ## Prove each image's extras are complete (a fresh venv per image; slow).
	@for i in $(IMAGES); do bash images/check-deps.sh $$i || exit 1; done

.PHONY: clean
clean: ## Remove caches (keeps .venv and the testenv binary cache).
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
