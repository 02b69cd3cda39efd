"""Writes docs/performance.md's GPU section and the GPU study configs' cost lines from gpu_results.json.

    python bench/gpu_docs.py [--results bench/gpu_results.json] [--check]

Everything between the markers is generated (the section: ``<!-- gpu:begin -->`` … ``<!-- gpu:end -->``;
in every examples/overoptimization/*.yaml that has them: ``# gpu-cost:begin`` … ``# gpu-cost:end``), so no
number is copied by hand. Without a results file the section says that no GPU run has been made and how to
make one. ``--check`` changes nothing and exits 1 if a file is not what this script would write.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "src")]

from gpu.report import PART_NAMES, num, part_lines, pct  # noqa: E402

RESULTS = HERE / "gpu_results.json"
DOCS = REPO / "docs" / "performance.md"
CONFIGS = REPO / "examples" / "overoptimization"
SECTION = re.compile(r"(<!-- gpu:begin[^\n]*-->\n).*?(<!-- gpu:end -->)", re.S)
COST = re.compile(r"(# gpu-cost:begin[^\n]*\n).*?(# gpu-cost:end)", re.S)
# issue 41's targets for rmguard packed: key → (goal, what it says)
GOALS = {
    "x_trl": (2.0, "≥ 2× TRL's pairs/s"),
    "mfu_vs_peak": (0.40, "≥ 40 % model FLOP utilisation of the card's bf16 peak"),
}

# The device tool's run call: carry [".gpu_carry"], timeout_s 590 (the parts' limits add up to 8 minutes).
DEVICE_COMMAND = (
    "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "
    ".gpu_carry/wheels/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 && python3 bench/gpu_suite.py "
    "--output $OUT/gpu_results.json --work /tmp 2>&1 | tee $OUT/gpu_suite.log"
)
HOW = f"""\
How to make a run (one call on a lent GPU machine; the parts' limits add up to 8 minutes): here,
`bash bench/gpu_carry.sh` builds `.gpu_carry/` (wheels of rmguard, TRL, datasets and the two packages
datasets needs beyond the machine's image, and SmolLM2's tokenizer: about 7 MiB), then the device tool's
`run` with `carry: [".gpu_carry"]`, `timeout_s: 590` and the command

    {DEVICE_COMMAND}

Commit the returned `gpu_results.json` as `bench/gpu_results.json` and run `python bench/gpu_docs.py`. A part
that failed or ran out of time can be run again alone: `... bench/gpu_suite.py --parts NAME ...`.

What it measures (bench/gpu/*.py say exactly how): packed against padded batches on CUDA for SDPA and eager,
fp32 and bf16, standard and GRM (rewards, hidden states, log-probs, every gradient), the last-layer saving,
flex_attention's fallback and the probe that guards packing; TRL's RewardTrainer against rmguard on a
random-init Llama-3.2-1B-shaped model (bf16 autocast, same pairs, batch and steps) with model FLOP
utilisation; scoring packed against padded and batch size 1 with 16 responses a prompt, and the largest
training batch that fits (full and LoRA); FSDP2 at world size 1 through rmguard's sharding (two ranks where
there are two GPUs) and GRM's LM-head memory; Best-of-N sampling and RLOO steps with the study's settings.

Tolerances: fp32 within 1e-5. bf16 keeps 8 significand bits, so a rounding is off by at most u = 2⁻⁸ of the
value; two correct paths that round and sum in different orders differ by a few u, and the suite accepts a
norm-wise relative difference of 8u = 2⁻⁵ ≈ 0.031 (each comparison also shows both paths' distance to fp32,
bf16's own error). Model FLOPs per pair: Σ over its two sequences (prompt + response, run alone) of
6·N·n + 6·L·d_attn·n² (N non-embedding weights, L layers, d_attn the attention width, causal attention),
over the card's bf16 dense peak (by device name) and over a bf16 8192³ matmul measured in the same call."""


def _training_table(results: dict) -> list[str]:
    runs = results.get("training", {}).get("results", {}).get("runs", {})
    if not runs:
        return []
    rows = ["| data | trainer | pairs/s | tokens/s | × TRL | MFU of peak | MFU of matmul | peak GiB |"]
    rows.append("|---|---|---|---|---|---|---|---|")
    for profile, trainers in runs.items():
        for name in ("trl", "rmguard-padded", "rmguard-packed"):
            t = trainers.get(name)
            if t:
                cells = [num(t.get(k)) for k in ("pairs_per_s", "tokens_per_s", "x_trl")]
                cells += [pct(t.get("mfu_vs_peak")), pct(t.get("mfu_vs_matmul")), num(t.get("peak_gib"))]
                rows.append(f"| {profile} | {name} | " + " | ".join(cells) + " |")
    packed = [t["rmguard-packed"] for t in runs.values() if "rmguard-packed" in t]
    rows.append("")
    for key, (goal, text) in GOALS.items():
        values = [t.get(key) for t in packed]
        met = bool(values) and all(v is not None and v >= goal for v in values)
        shown = ", ".join(f"{v:.3g}" if v is not None else "–" for v in values)
        rows.append(f"- Goal for rmguard packed, {text}: {'met' if met else 'not met'} ({shown}).")
    return ["", *rows]


def section(results: dict | None) -> str:
    """The generated GPU section (between the markers)."""
    out = ["## On a GPU (`bench/gpu_suite.py`)", ""]
    if results is None:
        out += ["**No GPU run has been made yet**: no session of this project has been lent a GPU machine "
                "since the suite was written, so every number on this page is from a 2-core CPU.", ""]  # fmt: skip
        return "\n".join([*out, HOW, ""])
    device = results["device"]
    if device.get("dry_run"):
        out += [
            "**Dry run on the CPU at tiny sizes**: this checks the suite's code and measures nothing about a GPU.",
            "",
        ]
    out.append(
        f"Device: {device.get('name')}; torch {device.get('torch')} (CUDA {device.get('cuda')}), transformers "
        f"{device.get('transformers')}, TRL {device.get('trl')}, accelerate {device.get('accelerate')}, peft "
        f"{device.get('peft')}; rmguard {device.get('rmguard_commit')}; {device.get('wall_s', 0):.0f} s in all."
    )
    for name in PART_NAMES:
        part = results.get(name)
        out += ["", f"**{name}** ({part.get('status') if part else 'not run'}"
                + (f", {part['seconds']:.0f} s of {part['limit_s']:.0f})" if part else ")")]  # fmt: skip
        lines = part_lines(name, part) if part else []
        if name == "training":  # its runs are the table below
            lines = lines[:1] + [line for line in lines[1:] if line.startswith(("ERROR", "TIMEOUT"))]
        out += [f"- {line}" for line in lines]
        if name == "training":
            out += _training_table(results)
    return "\n".join([*out, "", HOW, ""])


def _pool_responses(config: dict) -> int | None:
    """Responses in a study's pool: every prompt once per style, plus bon_n samples per Best-of-N prompt."""
    from rmguard.overopt.study.pool import STYLES

    if not all(isinstance(config.get(k), int) for k in ("prompts", "bon_prompts", "bon_n")):
        return None
    return config["prompts"] * len(STYLES) + config["bon_prompts"] * config["bon_n"]


def cost_lines(results: dict | None, config: dict) -> str:
    """The config's generated cost comment: sampling its pool at the suite's measured rate."""
    sampling = (results or {}).get("sampling", {}).get("results", {}).get("best_of_n", {}).get("llama-1b")
    if results is None or results["device"].get("dry_run") or not sampling:
        return "# Sampling the pool: not measured yet (no GPU run of bench/gpu_suite.py; docs/performance.md says how).\n"
    settings = results["sampling"]["results"].get("settings", {})
    responses = _pool_responses(config)
    rate = sampling["samples_per_s"]
    line = (
        f"# Sampling the pool, measured by bench/gpu_suite.py on {results['device']['name']}: a Llama-3.2-1B-shaped\n"
        f"#   policy samples {rate:.3g} responses/s at {settings.get('max_new_tokens')} new tokens each "
        f"(batches of {settings.get('batch_size')}, fp32)"
    )
    if responses is not None:
        line += f";\n#   this pool's {responses} responses: about {responses / rate / 3600:.2g} h (an upper bound: every sample ran to the limit)"
    if config.get("max_new_tokens") != settings.get("max_new_tokens"):
        line += f";\n#   note: this config asks for max_new_tokens {config.get('max_new_tokens')}"
    return line + ".\n"


def render(results: dict | None, docs: Path = DOCS, configs: Path = CONFIGS) -> dict[Path, str]:
    """path → its new text, for the docs page and every config under ``configs`` with the cost markers."""
    import yaml

    pages = {}
    text = docs.read_text()
    if not SECTION.search(text):
        raise SystemExit(f"{docs}: no '<!-- gpu:begin -->' … '<!-- gpu:end -->' markers")
    pages[docs] = SECTION.sub(lambda m: m.group(1) + section(results) + m.group(2), text)
    for path in sorted(configs.glob("*.yaml")):
        text = path.read_text()
        if COST.search(text):
            lines = cost_lines(results, yaml.safe_load(text) or {})
            pages[path] = COST.sub(lambda m, lines=lines: m.group(1) + lines + m.group(2), text)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", default=str(RESULTS), help="the suite's JSON (absent: 'no GPU run yet')")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    parser.add_argument("--docs", default=str(DOCS), help="the page with the GPU section's markers")
    parser.add_argument("--configs", default=str(CONFIGS), help="folder of study configs (*.yaml) to update")
    parser.add_argument("--device-command", action="store_true", help="print the device call's command only")
    args = parser.parse_args()
    if args.device_command:
        return print(DEVICE_COMMAND)

    from rmguard.fileio import atomic_write_text

    path = Path(args.results)
    results = json.loads(path.read_text()) if path.is_file() else None
    stale = []
    for page, text in render(results, Path(args.docs), Path(args.configs)).items():
        if page.read_text() != text:
            stale.append(page)
            if not args.check:
                atomic_write_text(page, text)
    for page in stale:
        print(f"{'stale' if args.check else 'wrote'}: {page}")
    if args.check and stale:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
