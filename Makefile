# The two commands a newcomer needs:  make demo   (run the main job)   and   make test   (run the tests)
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
FMNIST  := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test bench setup system-deps clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test,mpi]'
	# torch: the parity tests and benchmarks need it (the on-disk CPU build installs without a download);
	# a failed install stops here, so the venv is not stamped as ready and the next make retries
	$(VPY) -m pip install -q torch==2.13.0 || { echo "error: torch 2.13.0 did not install; the torch tests" \
	  "and benchmarks need it (a skipped torch test fails 'make test'). Fix the install, rerun make setup." >&2; exit 1; }
	touch $(STAMP)

setup: system-deps $(STAMP)

# Debian packages: Graphviz's dot (viz tool), gcc (AOT test), Fashion-MNIST (the MNIST example), the aarch64
# cross compiler (with its libgomp) and qemu-user (tests/aot/test_cross_aarch64.py)
system-deps:
	@need=""; \
	command -v dot >/dev/null 2>&1 || need="$$need graphviz"; \
	command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need="$$need gcc-aarch64-linux-gnu"; \
	command -v qemu-aarch64 >/dev/null 2>&1 || need="$$need qemu-user"; \
	command -v gcc >/dev/null 2>&1 || need="$$need gcc"; \
	command -v g++ >/dev/null 2>&1 || need="$$need g++"; \
	[ -f $(FMNIST) ] || need="$$need dataset-fashion-mnist"; \
	if [ -n "$$need" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$need"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need >/dev/null; \
	  else \
	    echo "warning: missing$$need; install with: sudo apt-get install$$need"; \
	  fi; \
	fi

demo: setup
	$(VPY) examples/custom_optimiser.py --device cpu
	@if [ -f tools/demo_artifacts.py ]; then $(VPY) -m tools.demo_artifacts --out out; fi
	@if [ -f examples/mnist_adam.py ]; then $(VPY) examples/mnist_adam.py --device cpu; fi

test: setup
	$(VPY) -m pytest -n 2 -m "not slow"

# every benchmark writes benchmarks/results/<name>/<time>.json; the report renders README.md's tables
BENCH_FLAGS ?=
bench: setup
	$(VPY) benchmarks/adam_step.py $(BENCH_FLAGS)
	$(VPY) benchmarks/mnist_train.py $(BENCH_FLAGS)
	$(VPY) benchmarks/torch_optim.py $(BENCH_FLAGS)
	$(VPY) benchmarks/torch_loop.py $(BENCH_FLAGS)
	$(VPY) benchmarks/torch_train.py $(BENCH_FLAGS)
	$(VPY) -m benchmarks.report

clean:
	rm -rf $(VENV) out .pytest_cache
