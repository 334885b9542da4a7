# Set-up is part of every entry point: a fresh clone needs only `make run` or `make test`.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Local data mirrors: keep a caller's value, else the nearest shared/data above this checkout.
export DCPIPE_DATA_MIRRORS ?= $(shell workflow/find_mirrors.sh)
CORES ?= all
GPUS ?= 2

.PHONY: run test test-cluster gpu-check setup fashion-mnist plots-template web-assets browser cluster-packages dvc-repro clean

run: setup                      ## the main job on params.yaml -> reports/
	snakemake --cores $(CORES) --resources gpu=$(GPUS) $(SNAKEMAKE_ARGS)

test: setup browser cluster-packages  ## the test suite (unit tests + an end-to-end smoke run on real data)
	pytest -m 'not cluster' $(PYTEST_ARGS)

# The smoke configuration through a real one-node SLURM cluster (tests/cluster/slurm.sh), with its own smoke run to
# compare with: minutes of its own, so not in `make test`'s time budget; .ci/run runs both.
test-cluster: setup cluster-packages  ## the SLURM test (tests/test_slurm.py; root)
	pytest -m cluster $(PYTEST_ARGS) tests/test_slurm.py

# The CUDA road (dcpipe.gpu_check; docs/gpu-and-protocol-runs.md): no set-up, so that a GPU machine's own python3 with torch runs
# it on the library in src/. Full budgets on CUDA (minutes), tiny ones elsewhere; exit 1 when a check fails.
gpu-check:                      ## lease, CUDA tests, FashionMNIST IPC-1 at K = 1000 and IPC-10 timing -> reports/gpu.json
	PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH} python3 -m dcpipe.gpu_check $(GPU_CHECK_ARGS)

# DVC has no start hook: check that this machine holds the planned data (and CUDA if asked for) before any stage.
dvc-repro: setup                ## the same DAG through DVC
	dcpipe check-params --local params.yaml
	dvc repro

setup: $(STAMP) fashion-mnist plots-template web-assets

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# Fashion-MNIST comes from Debian's dataset-fashion-mnist (installed when missing and we are root).
fashion-mnist:
	@if ! dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "note: dataset-fashion-mnist is not installed (sudo apt-get install dataset-fashion-mnist)"; fi; fi

# `dvc plots show` pages that open offline: .dcpipe/dvc_plots_template.html with Vega inlined from npm (.dvc/config's
# plots.html_template). Without npm it writes a CDN-loading template and says how to get the offline one.
plots-template:
	@python3 workflow/build_plots_template.py

# The report's sortable tables (tablesort, inlined from src/dcpipe/report/static/) and the browser test's
# accessibility check (axe-core, .dcpipe/web/), from npm like the plots template. Without npm it says what to do and
# writes nothing: the report's tables are then plain, and the accessibility check skips.
web-assets:
	@python3 workflow/build_web_assets.py

# The browser test (tests/test_browser.py) drives Debian's chromium with its chromedriver (installed when missing and
# we are root; selenium-manager's downloads fail offline).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! test -x /usr/bin/chromedriver; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else echo "note: chromium/chromium-driver are not installed (sudo apt-get install chromium chromium-driver): the browser test skips"; fi; fi

# The SLURM test's one-node cluster (slurmctld, slurmd, munge) and the DVC round trip's sshd (openssh-server), from
# Debian (installed when missing and we are root; the tests skip without them, except under CI=true).
cluster-packages:
	@missing=; for f in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged /usr/sbin/sshd; do \
	  test -x $$f || missing="$$missing $$f"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends slurmctld slurmd slurm-client munge openssh-server; \
	  else echo "note:$$missing not installed (sudo make cluster-packages): the SLURM and DVC-remote tests skip"; fi; fi

clean:                          ## remove pipeline outputs (keeps reports/records)
	rm -rf logs .snakemake && find data -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} + 2>/dev/null || true
	find reports -mindepth 1 -maxdepth 1 ! -name records -exec rm -rf {} +
