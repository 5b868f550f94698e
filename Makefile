# The front door: `make train` and `make test` each set up .venv first on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Without a visible NVIDIA GPU, torch is installed first at this spec (a CPU build where the package
# index has one); with a GPU, pip resolves torch from pyproject.toml and gets its CUDA build as usual.
# Point it elsewhere with e.g. TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install train test bench bench-quick bench-suite lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	if ! command -v nvidia-smi >/dev/null 2>&1 && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python -m pip install --quiet $(TORCH_SPEC); fi
	$(BIN)/python -m pip install --quiet -e ".[dev,atari]"
	touch $@

train: install
	$(BIN)/fastdqn train $(ARGS)

# the tests also drive --log tensorboard/wandb, eval --video, train --actors (Ray) and LunarLander (box2d): extras that `make train` never installs
$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,atari,tensorboard,wandb,video,ray,box2d]"
	touch $@

test: install $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the bench also compares against Stable-Baselines3's and TorchRL's buffers, an extra the tests never need
$(VENV)/.bench-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,atari,bench]"
	touch $@

bench: install $(VENV)/.bench-installed
	$(BIN)/python bench/run.py

bench-quick: install $(VENV)/.bench-installed
	$(BIN)/python bench/run.py --quick

# every classic preset at its budget over seeds 1-10, beside SB3 with rl-zoo's settings (hours on a small CPU; not part of `make bench`)
$(VENV)/.suite-installed: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,atari,bench,box2d]" rl_zoo3
	touch $@

bench-suite: install $(VENV)/.suite-installed
	$(BIN)/python bench/suite.py $(ARGS)

lint: install
	$(BIN)/ruff check fastdqn tests bench cli.py
	$(BIN)/ruff format --check fastdqn tests bench cli.py
	$(BIN)/mypy fastdqn

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
