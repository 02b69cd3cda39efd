"""Does an rmguard checkpoint score the same under transformers 4.x as under rmguard?

RewardBench 0.1.4 pins transformers 4.51 and vLLM's CPU build pins transformers < 5.20; both load a reward
model with plain ``AutoModelForSequenceClassification``. This script trains a small checkpoint (SmolLM2
cut to two layers, two steps on the shipped example pairs) unless ``--model`` names one, scores a set of
conversations with ``rmguard score``, builds a separate virtual environment with the older transformers,
scores the same conversations there the way those tools do (chat template → tokens → model), and prints
the largest difference. Exit status 1 when it exceeds ``--atol``.

    python scripts/check_compat.py [--model CKPT] [--transformers 4.51.3] [--venv .venv-compat]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Runs inside the old-transformers environment: the consumer's view of the checkpoint.
CONSUMER = """
import json, sys, torch, transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder, chats = sys.argv[1], json.load(open(sys.argv[2]))
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder, torch_dtype=torch.float32).eval()
rewards = []
with torch.no_grad():
    for chat in chats:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        rewards.append(model(**ids).logits[0, 0].item())
print(json.dumps({"transformers": transformers.__version__, "rewards": rewards}))
"""


def train_checkpoint(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rmguard",
            "train",
            "--config",
            str(REPO / "examples" / "bt.yaml"),
            "--num_hidden_layers",
            "2",
            "--max_steps",
            "2",
            "--output_dir",
            str(folder),
            "--disable_tqdm",
            "true",
            "--report_to",
            "none",
        ],
        check=True,
        cwd=REPO,
    )
    return folder


def conversations() -> list[list[dict[str, str]]]:
    rows = [
        json.loads(line) for line in (REPO / "examples/data/preferences_eval.jsonl").read_text().splitlines()
    ]
    chats = []
    for row in rows[:16]:
        for response in (row["chosen"], row["rejected"]):
            prompt = (
                row["prompt"]
                if isinstance(row["prompt"], list)
                else [{"role": "user", "content": row["prompt"]}]
            )
            reply = response if isinstance(response, list) else [{"role": "assistant", "content": response}]
            chats.append(prompt + reply)
    return chats


def rmguard_rewards(model: Path, chats: list, workdir: Path) -> list[float]:
    data = workdir / "responses.jsonl"
    data.write_text("".join(json.dumps({"prompt": c[:-1], "response": c[-1:]}) + "\n" for c in chats))
    output = workdir / "scores.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "rmguard",
            "score",
            "--model",
            str(model),
            "--data",
            str(data),
            "--output",
            str(output),
        ],
        check=True,
    )
    return [json.loads(line)["reward"] for line in output.read_text().splitlines()]


def consumer_rewards(venv: Path, version: str, model: Path, chats: list, workdir: Path) -> dict:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "torch==2.13.0",
            f"transformers=={version}",
            "safetensors",
            "jinja2",
        ],
        check=True,
    )
    chats_file = workdir / "chats.json"
    chats_file.write_text(json.dumps(chats))
    result = subprocess.run(
        [str(python), "-c", CONSUMER, str(model), str(chats_file)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="checkpoint to check (default: train a small one)")
    parser.add_argument("--transformers", default="4.51.3", help="the older transformers release")
    parser.add_argument("--venv", default=str(REPO / ".venv-compat"), help="where to build its environment")
    parser.add_argument("--atol", type=float, default=1e-5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model = Path(args.model) if args.model else train_checkpoint(workdir / "rm")
        chats = conversations()
        ours = rmguard_rewards(model, chats, workdir)
        theirs = consumer_rewards(Path(args.venv), args.transformers, model, chats, workdir)
    worst = max(abs(a - b) for a, b in zip(ours, theirs["rewards"]))
    print(
        f"{len(ours)} conversations: rmguard score vs transformers {theirs['transformers']} "
        f"AutoModelForSequenceClassification, max |difference| = {worst:.2e} (atol {args.atol:g})"
    )
    return 0 if worst <= args.atol else 1


if __name__ == "__main__":
    raise SystemExit(main())
