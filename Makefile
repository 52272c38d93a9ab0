# Two entry points (README): `make test` and `make ci-colab`. Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch is pinned on its own line so pip takes the CPU build this machine keeps on local disk
# (pip's find-links); an unpinned torch would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: venv browser test ci-colab clean

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

test: venv browser
	$(PY) -m pytest $(PYTEST_ARGS)

ci-colab: venv
	$(PY) -m harness run notebook/template.ipynb --out out/ci-colab $(HARNESS_ARGS)

clean:
	rm -rf $(VENV) out
