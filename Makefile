# Everything a new machine needs is installed here, into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MILVUS_PORT ?= 19531
MILVUS_DATA ?= .milvus
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv system axe demo lint test test-fast milvus-up milvus-down bench-tutorial bench-ingest bench-query bench-serve bench-hostile bench-formats bench-quality bench-followups bench-scale bench-pipeline bench-embedding clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) (first run only: about 3 minutes)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> installing torch 2.13.0 (CPU build)"
	@# The CPU build of torch lies on this machine's disk; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	@echo "==> installing ragtide, pymilvus, milvus-lite, sentence-transformers, the test and lint tools"
	$(BIN)/pip install -q -e '.[test,lint]'
	touch $@
	@echo "==> $(VENV) ready"

demo: venv
	rm -rf .demo
	@# The user guide; the measurement and failure tables are reference pages, not a guide's answers.
	$(BIN)/ragtide ingest docs --exclude benchmarks.md --exclude failures.md --uri .demo/ragtide.db
	$(BIN)/ragtide query "What happens when I ingest the same files again?" --uri .demo/ragtide.db
	$(BIN)/ragtide status --uri .demo/ragtide.db

milvus-up: venv
	$(BIN)/python scripts/milvus_server.py up --port $(MILVUS_PORT) --data $(MILVUS_DATA)

milvus-down:
	$(PYTHON) scripts/milvus_server.py down --data $(MILVUS_DATA)

# Debian's programs the tests drive: chromium for the page's browser test, Tesseract for OCR
# (each test that needs one is skipped, with the reason, where it cannot be installed).
system:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	  [ -z "$$missing" ] || { echo "==> installing Debian's$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	    || echo "==> could not install$$missing: the tests that need them will be skipped"; }

# axe-core, the accessibility checker the page's browser test injects (npm registry, pinned).
AXE := .axe/node_modules/axe-core/axe.min.js
axe: $(AXE)
$(AXE):
	npm install -s --no-audit --no-fund --prefix .axe axe-core@4.14.1 \
	  || echo "==> could not install axe-core: the page's accessibility check will be skipped"

# Starts a real Milvus server, runs the suite against Milvus Lite and it, and always stops it.
test: venv system axe
	$(MAKE) milvus-up
	RAGTIDE_TEST_SERVER_URI=http://127.0.0.1:$(MILVUS_PORT) RAGTIDE_TEST_SERVER_DATA=$(MILVUS_DATA) \
	  $(BIN)/python -m pytest -q -rs --durations=40; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

# Formatting, lint rules and types, as CI checks them (pyproject.toml says which and why).
lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

# The tier to iterate with (under 3 minutes): Milvus Lite, a hashing embedder instead of the
# model, no server, no subprocess; `make test` runs everything.
test-fast: venv
	RAGTIDE_TEST_FAST=1 $(BIN)/python -m pytest -q -m "not server and not model"

# LlamaIndex's own Milvus store pins pymilvus < 3, so it gets a virtualenv of its own.
.venv-llamaindex/.installed: benchmarks/requirements-llamaindex.txt
	$(PYTHON) -m venv .venv-llamaindex
	.venv-llamaindex/bin/pip install -q torch==2.13.0
	.venv-llamaindex/bin/pip install -q -r benchmarks/requirements-llamaindex.txt
	touch $@

# markitdown, the general converter the format readers were compared with, in a virtualenv of its own.
.venv-markitdown/.installed:
	$(PYTHON) -m venv .venv-markitdown
	.venv-markitdown/bin/pip install -q 'markitdown[docx,pptx,xlsx,pdf]==0.1.9'
	touch $@

# Each format's reader against markitdown: text kept, speed, memory, install weight; and OCR's rate.
bench-formats: venv system .venv-markitdown/.installed
	$(BIN)/python benchmarks/formats.py --markitdown .venv-markitdown/bin/python | tee benchmarks/results-formats.txt

# Benchmarks run on the test server (started and always stopped here); none is part of `make test`.
bench-tutorial: venv .venv-llamaindex/.installed
	$(MAKE) milvus-up
	$(BIN)/python benchmarks/tutorial.py --uri http://127.0.0.1:$(MILVUS_PORT) --repeat 3 && \
	  .venv-llamaindex/bin/python benchmarks/llamaindex_baseline.py --uri http://127.0.0.1:$(MILVUS_PORT) \
	    | tee benchmarks/results-llamaindex-baseline.txt; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

bench-ingest: venv .venv-llamaindex/.installed
	$(MAKE) milvus-up
	$(BIN)/python benchmarks/ingest.py --uri http://127.0.0.1:$(MILVUS_PORT) --repeat 3; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

bench-query: venv
	rm -rf .bench-query && mkdir -p .bench-query
	$(BIN)/python benchmarks/query.py --uri .bench-query/query.db | tee benchmarks/results-query-lite.txt
	$(MAKE) milvus-up
	$(BIN)/python benchmarks/query.py --uri http://127.0.0.1:$(MILVUS_PORT) | tee benchmarks/results-query-server.txt; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

# Embedding backends: speed, agreement with torch, SciFact per backend (~45 min). model2vec is
# measured beside them; its `distill` extra pins transformers < 5.4, so it is installed without
# the extra (it runs on the venv's own transformers).
bench-embedding: venv
	$(BIN)/pip install -q model2vec 'skeletoken>=0.6,<0.7'
	$(BIN)/python benchmarks/embedding.py --repeat 3 --model2vec --scifact | tee benchmarks/results-embedding.txt

# `ragtide serve` over HTTP against the same engine in process, on Milvus Lite.
bench-serve: venv
	$(BIN)/python benchmarks/serve.py --sequential 100 --per-client 4 | tee benchmarks/results-serve-lite.txt

# The outside probe of `ragtide serve`, against a real service process on Milvus Lite.
bench-hostile: venv
	$(BIN)/python benchmarks/hostile.py | tee benchmarks/results-hostile.txt

# SciFact, Uber val and the dev question set, per retrieval mode, on Milvus Lite (about 30 minutes on 2 cores).
bench-quality: venv
	rm -rf .bench-quality
	$(BIN)/python benchmarks/quality.py --work .bench-quality --sweep

bench-followups: venv
	$(BIN)/python benchmarks/followups.py

# The ingest pipeline's own ceiling (a zero-cost embedder), its profile, and Ray against one process.
bench-pipeline: venv
	$(MAKE) milvus-up
	$(BIN)/python benchmarks/pipeline.py --uri http://127.0.0.1:$(MILVUS_PORT) --copies 4 --ray; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

bench-scale: venv
	$(MAKE) milvus-up
	$(BIN)/python benchmarks/scale.py --uri http://127.0.0.1:$(MILVUS_PORT) --rows 200000; \
	  status=$$?; $(MAKE) milvus-down; exit $$status

clean:
	rm -rf $(VENV) .venv-llamaindex .demo .axe .bench-query .bench-quality $(MILVUS_DATA) *.egg-info src/*.egg-info
