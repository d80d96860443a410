# Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNTIME := $(VENV)/.runtime-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

SQUAD_V1 ?= ../shared/benchmarks/squad-v1.1-dev/dev-v1.1.json.gz
SQUAD_V2 ?= ../shared/benchmarks/squad-v2.0-dev/dev-v2.0.json.gz
SCIFACT  ?= ../shared/benchmarks/beir-scifact

.DEFAULT_GOAL := help
.PHONY: help install index serve test test-fast eval calibrate answer-model docs-tables bench bench-quality bench-formats bench-large bench-scale soak fuzz lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# Serving needs the package and its dependencies ($(RUNTIME)); tests and benchmarks add the
# development tools ($(STAMP)). pip shows its progress: the first install takes a minute or more.
$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip --progress-bar on -q
	@echo "installing qa and what serving needs into $(VENV) ..."
	$(BIN)/pip install -e . --progress-bar on
	touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	@echo "installing the test and benchmark tools (and Ray, for the cluster tests) into $(VENV) ..."
	$(BIN)/pip install -e '.[dev,ray]' --progress-bar on
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with its test tools

index: $(RUNTIME) ## Build or update the index from corpus/ (incremental)
	$(BIN)/qa index

serve: $(RUNTIME) ## Build the index if missing or stale, then serve on 127.0.0.1:8000 (PORT=8001 for another)
	$(BIN)/qa index
	$(BIN)/qa serve $(if $(PORT),--port $(PORT))

test: $(STAMP) ## Run every test (unit, real-model integration, HTTP, reload, fuzz, browser)
	$(BIN)/pytest -q

test-fast: $(STAMP) ## Unit tests only (fake encoder: no real model, no server, no Ray, no browser)
	$(BIN)/pytest -q -m "not slow and not browser"

eval: $(STAMP) ## Run the evaluation set and print the metrics
	$(BIN)/qa index
	$(BIN)/qa eval

calibrate: $(STAMP) ## Fit the answer rule (cross-validated across our question files and SQuAD's training side) into the index
	$(BIN)/qa index
	$(BIN)/qa calibrate $(if $(wildcard $(SQUAD_V1)),--squad-v1 $(SQUAD_V1))

answer-model: $(STAMP) ## Train the reader on SQuAD's training side into build/reader (seeded, about 52 min on 2 cores)
	$(BIN)/python -m tools.train_reader $(SQUAD_V1) $(SQUAD_V2) --out build/reader --seed 14 --written tools/written_questions.jsonl --documents tools/written_documents.jsonl tools/written_items.jsonl
	@echo "to ship it: copy build/reader/{model.onnx,tokenizer.json,meta.json} into qa/models/reader, then"
	@echo "  QA_READER=qa/models/reader $(BIN)/qa calibrate --squad-v1 $(SQUAD_V1) --default-out qa/models/reader/rule.json"

docs-tables: $(STAMP) ## Write the figures tables in docs/ from the JSON reports in docs/figures/
	$(BIN)/python docs/tables.py

WRK := command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench: $(STAMP) ## Speed against the in-process floor (HTTP, concurrency, cache, start-up, memory), and where a question's time goes
	@$(WRK)
	$(BIN)/qa bench speed
	$(BIN)/qa bench profile

bench-quality: $(STAMP) ## SQuAD v1.1 and v2.0 dev against BM25-only and dense-only baselines
	$(BIN)/qa bench squad $(SQUAD_V1)
	$(BIN)/qa bench squad $(SQUAD_V2)

bench-formats: $(STAMP) ## Format parity: SQuAD v1.1 articles as Markdown, HTML, Word and PDF
	$(BIN)/qa bench formats $(SQUAD_V1)

bench-large: $(STAMP) ## Build, size, memory and latency on a 100k-passage corpus made from SciFact
	@$(WRK)
	$(BIN)/qa bench large $(SCIFACT)

bench-scale: $(STAMP) ## Shards and Ray: sharded search vs one index, compact vectors, build throughput, Ray Serve latency
	$(BIN)/qa bench shards $(SQUAD_V1) --shards 4
	$(BIN)/qa bench compact $(SQUAD_V1) --cap 10000 --cap 2000
	$(BIN)/qa bench build $(SCIFACT) --ray local --actors 1 --actors 2
	@$(WRK)
	$(BIN)/qa bench ray-serve $(SCIFACT) --shards 2 --replicas 1 --replicas 2

soak: $(STAMP) ## 60 s of 32 concurrent clients; errors and memory growth
	@$(WRK)
	$(BIN)/qa bench speed --soak 60

fuzz: $(STAMP) ## Full schemathesis run against a live server
	$(BIN)/qa index
	QA_FUZZ_EXAMPLES=150 $(BIN)/pytest -q tests/test_fuzz.py

lint: $(STAMP) ## ruff check and format check, mypy
	$(BIN)/ruff check qa bench tools tests docs
	$(BIN)/ruff format --check qa bench tools tests docs
	$(BIN)/mypy

clean: ## Remove the virtualenv and the built index
	rm -rf $(VENV) index/current index/builds index/models index/.tmp-* index/.lock
