# Two entry points (README): `make test` and `make ci-colab`. Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned on its own line so pip takes the CPU build this machine keeps on local disk
# (pip's find-links); an unpinned torch would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: venv browser test ci-colab colab-runtime clean

$(VENV)/.installed: pyproject.toml notebook/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" numpy
	$(PY) -m pip install -q -e ./notebook -e ".[test]" "$(TORCH)"
	touch $@

venv: $(VENV)/.installed

# The smoke test drives a real browser: Debian's chromium here (Playwright cannot download its own),
# whatever COLAB_CI_BROWSER names, or Chrome where a runner has it.
browser:
	@if [ -n "$$COLAB_CI_BROWSER" ] || command -v chromium >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (apt-get) for the browser smoke test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "no browser for the smoke test: install chromium, or set COLAB_CI_BROWSER" >&2; exit 1; fi

# The suite on TEST_WORKERS pytest-xdist workers; tests sharing a module's built fixture stay together
# (--dist loadgroup, tests/conftest.py). TEST_WORKERS=0 runs it in this one process. Tests marked
# `serial` (Ctrl-C to runs and their kernels, timing) run afterwards, alone: their time bounds are for the
# run, not for other workers' load. Both parts always run; the exit status is the worse of them (pytest's
# 5, "no test selected", counts as 0 in each part).
TEST_WORKERS ?= auto
test: venv browser
	@status=0; \
	part() { "$$@"; rc=$$?; [ $$rc -eq 5 ] && rc=0; [ $$rc -gt $$status ] && status=$$rc; return 0; }; \
	part $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not serial" $(PYTEST_ARGS); \
	part $(PY) -m pytest -m serial $(PYTEST_ARGS); \
	exit $$status

# The whole job, as the monthly workflow runs it: preflight (resolver dry-run per image), the matrix
# (the notebook under the harness in every image's mirror environment, in parallel), the browser smoke
# test. Leave parts out with PREFLIGHT=0, MATRIX=0 or SMOKE=0; IMAGES="name ..." narrows the images
# (default: every CPU profile, and the -gpu one where this machine has a GPU: docs/images.md).
# Every part runs even when an earlier one failed; the exit status is the worst of them.
PREFLIGHT ?= 1
MATRIX    ?= 1
SMOKE     ?= 1
# The matrix's mirrors are built beside preflight (`matrix --build-only`, log out/prebuild.log); the matrix
# then finds them up to date, or waits for the one still building (one build per mirror at a time).
PREBUILD  ?= $(MATRIX)
IMAGES    ?=
IMAGES_ARG = $(if $(strip $(IMAGES)),--images $(IMAGES))

ci-colab: venv browser
	@status=0; \
	step() { "$$@"; rc=$$?; [ $$rc -gt $$status ] && status=$$rc; return 0; }; \
	prebuild=; \
	if [ "$(PREBUILD)" != 0 ]; then mkdir -p out; echo "ci-colab: building the matrix's mirrors beside preflight (log: out/prebuild.log)"; \
	  $(PY) -m harness matrix --build-only $(IMAGES_ARG) $(HARNESS_ARGS) >out/prebuild.log 2>&1 & prebuild=$$!; fi; \
	if [ "$(PREFLIGHT)" != 0 ]; then step $(PY) -m harness preflight $(IMAGES_ARG) --out out/preflight; fi; \
	if [ "$(MATRIX)" != 0 ]; then step $(PY) -m harness matrix $(IMAGES_ARG) --out out/matrix $(HARNESS_ARGS); fi; \
	if [ -n "$$prebuild" ] && ! wait $$prebuild; then echo "ci-colab: a mirror's prebuild failed (out/prebuild.log)"; \
	  [ "$(MATRIX)" != 0 ] || { [ $$status -gt 2 ] || status=2; }; fi; \
	if [ "$(SMOKE)" != 0 ]; then step $(PY) -m harness smoke --out out/smoke; fi; \
	echo "ci-colab: exit $$status (reports under out/)"; exit $$status

# The notebook inside Colab's own CPU runtime container, as the workflow's colab-runtime job runs it
# (one script for both). Needs docker with a running engine; says so, exit 2, where there is none.
# Reports in out/colab-runtime. PARAMETERS="ENABLE_TIER2=False ..." as in the workflow.
colab-runtime:
	bash .github/scripts/colab-runtime.sh

clean:
	rm -rf $(VENV) out
