# Every target creates the virtualenv (.venv) on first use and installs the
# project into it, so a fresh clone needs nothing but Python 3.10+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The shared MNIST copy beside the checkout, when there is one; otherwise the
# loader falls back to $$MNIST_DATA_DIR or the Keras cache/download.
MNIST_DATA_DIR ?= $(wildcard $(abspath ../shared/data/mnist))
export MNIST_DATA_DIR

.PHONY: demo test exercise reproduce bench install clean constraints reproduce-rnn bench-rnn \
	reproduce-batchnorm bench-batchnorm reproduce-probes bench-probes \
	reproduce-batchnorm-revised reproduce-batchnorm-claims reproduce-batchnorm-in-order \
	reproduce-inversion bench-inversion reproduce-convergence bench-convergence \
	reproduce-convergence-studies

# Installs the exact versions in constraints.txt (those the published numbers
# were produced with), so a fresh machine next year gets the same results.
$(VENV)/installed: setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

# Regenerates constraints.txt from the newest releases setup.cfg allows.
# Rerun `make test` and `make reproduce` before committing the new file.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/python -m pip install --quiet --upgrade pip
	.venv-constraints/bin/python -m pip install --quiet -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; \
	  .venv-constraints/bin/python -m pip freeze --exclude-editable; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-constraints

install: $(VENV)/installed

demo: install
	$(PY) -m rnn_scratch --output_dir runs/demo --overwrite

test: install
	$(PY) -m pytest tests -n auto

# Checks a learner's exercises/$(NAME).py with the same equivalence checks the
# tests run on the packages (exercises/README.md); no NAME: the list.
exercise: install
	$(PY) -m exercises $(NAME)

# Blog-scale runs of every experiment; results.json + figures under runs/.
reproduce: reproduce-rnn reproduce-batchnorm reproduce-probes reproduce-inversion \
	reproduce-convergence

# The post's three learning curves with its epochs (about a minute in all;
# each run is redone from the start, so --overwrite).
reproduce-rnn: install
	$(PY) -m rnn_scratch --bptt_steps=5 --state_size=4 --epochs=1 --output_dir runs/reproduce/rnn_bptt5 --overwrite
	$(PY) -m rnn_scratch --bptt_steps=1 --state_size=4 --epochs=2 --output_dir runs/reproduce/rnn_bptt1 --overwrite
	$(PY) -m rnn_scratch --bptt_steps=10 --state_size=16 --epochs=10 --output_dir runs/reproduce/rnn_bptt10 --overwrite

# batchnorm_manual: the 2016 original post's setting (below), then the
# revised post's, the BN paper's claims over 8 learning rates x 3 seeds, and
# the old batch order for the before/after comparison (times on 2 busy
# cores: batchnorm_manual/README.md, "How to run").
reproduce-batchnorm: install reproduce-batchnorm-revised \
	reproduce-batchnorm-claims reproduce-batchnorm-in-order
	$(PY) -m batchnorm_manual --output_dir runs/reproduce/batchnorm_manual --overwrite

reproduce-batchnorm-revised: install
	$(PY) -m batchnorm_manual --post_version=revised --output_dir runs/reproduce/batchnorm_manual_revised --overwrite

reproduce-batchnorm-claims: install
	$(PY) -m batchnorm_manual --lr_sweep=0.003,0.01,0.02,0.03,0.05,0.1,0.3,1 --sweep_seeds=3 --output_dir runs/reproduce/batchnorm_manual_claims --overwrite

reproduce-batchnorm-in-order: install
	$(PY) -m batchnorm_manual --split=first --batch_order=ordered --lr_sweep=0.01 --sweep_seeds=3 --output_dir runs/reproduce/batchnorm_manual_in_order --overwrite

# About 3 minutes on 2 cores; a short run, so it is redone from the start.
reproduce-probes: install
	$(PY) -m mnist_probes --output_dir runs/reproduce/mnist_probes --overwrite

bench-probes: install
	$(PY) benchmarks/bench_mnist_probes.py

reproduce-inversion: install
	$(PY) -m inversion.reproduce --output_dir runs/reproduce/inversion --overwrite

# About 15 minutes on 2 cores (500 + 500 networks x 3 optimizers). Run again,
# it resumes an interrupted reproduction and keeps finished runs of the same
# settings (it refuses ones with other settings); to redo everything:
#   $(PY) -m convergence.reproduce --output_dir runs/reproduce/convergence --overwrite
reproduce-convergence: install
	$(PY) -m convergence.reproduce --output_dir runs/reproduce/convergence

# The studies beyond the blog (convergence/README.md, "Beyond the blog:
# learning rates, ..."): the learning-rate x
# strategy map, 500 + 500 at each best rate, the paired / equal-step /
# strategy-switch run and the persistence runs, then studies.md and the
# figures. Hours on 2 shared cores; resumes like reproduce-convergence. The
# sizes are those of the README's tables. Hours, so `make reproduce` leaves
# it out.
reproduce-convergence-studies: install
	$(PY) -m convergence.reproduce --studies=persistence --persistence_scales=4 \
	  --persistence_runs=50 --output_dir runs/reproduce/convergence_studies
	$(PY) -m convergence.reproduce --studies=lr_map,best,paired,persistence \
	  --map_runs=50 --paired_runs=100 --persistence_runs=100 --persistence_scales=2 \
	  --output_dir runs/reproduce/convergence_studies --figures_dir convergence/figures

# Ours vs the Keras reference, measured in the same run, printed as ratios.
bench: bench-rnn bench-batchnorm bench-probes bench-inversion bench-convergence

bench-rnn: install
	$(PY) benchmarks/bench_rnn.py

bench-batchnorm: install
	$(PY) benchmarks/bench_batchnorm.py

bench-inversion: install
	$(PY) benchmarks/bench_inversion.py

bench-convergence: install
	$(PY) benchmarks/bench_convergence.py

clean:
	rm -rf $(VENV) runs *.egg-info
