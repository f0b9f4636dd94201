# Every target creates the virtualenv (.venv) on first use and installs the
# project into it, so a fresh clone needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The shared MNIST copy beside the checkout, when there is one; otherwise the
# loader falls back to $$MNIST_DATA_DIR or the Keras cache/download.
MNIST_DATA_DIR ?= $(wildcard $(abspath ../shared/data/mnist))
export MNIST_DATA_DIR

.PHONY: demo test reproduce bench install clean reproduce-rnn bench-rnn \
	reproduce-batchnorm bench-batchnorm reproduce-probes reproduce-inversion \
	reproduce-convergence bench-convergence

$(VENV)/installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/installed

demo: install
	$(PY) -m rnn_scratch --output_dir runs/demo --overwrite

test: install
	$(PY) -m pytest tests

# Blog-scale runs of every experiment; results.json + figures under runs/.
reproduce: reproduce-rnn reproduce-batchnorm reproduce-probes reproduce-inversion \
	reproduce-convergence

reproduce-rnn: install
	$(PY) -m rnn_scratch --num_steps=1 --state_size=4 --output_dir runs/reproduce/rnn_steps1 --overwrite
	$(PY) -m rnn_scratch --num_steps=5 --state_size=4 --output_dir runs/reproduce/rnn_steps5 --overwrite
	$(PY) -m rnn_scratch --num_steps=10 --state_size=16 --epochs=3 --output_dir runs/reproduce/rnn_steps10 --overwrite

reproduce-batchnorm: install
	$(PY) -m batchnorm_manual --output_dir runs/reproduce/batchnorm_manual --overwrite

reproduce-probes: install
	$(PY) -m mnist_probes --output_dir runs/reproduce/mnist_probes --overwrite

reproduce-inversion: install
	$(PY) -m inversion.reproduce --output_dir runs/reproduce/inversion --overwrite

# About 30 minutes on 2 cores (500 + 500 networks x 3 optimizers); rerunning
# without --overwrite resumes an interrupted run.
reproduce-convergence: install
	$(PY) -m convergence.reproduce --output_dir runs/reproduce/convergence --overwrite

# Ours vs the Keras reference, measured in the same run, printed as ratios.
bench: bench-rnn bench-batchnorm bench-convergence

bench-rnn: install
	$(PY) benchmarks/bench_rnn.py

bench-batchnorm: install
	$(PY) benchmarks/bench_batchnorm.py

bench-convergence: install
	$(PY) benchmarks/bench_convergence.py

clean:
	rm -rf $(VENV) runs *.egg-info
