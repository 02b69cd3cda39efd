"""gpu_results.json as text: the short table the suite prints last, and the GPU section of
docs/performance.md (``bench/gpu_docs.py`` writes it). Every number comes from the JSON; a part that
failed or ran out of time says so, with the numbers it had recorded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PART_NAMES = ("exactness", "training", "scoring", "fsdp", "sampling")


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.{digits}g}"
    return f"{value:.1e}"


def pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def exactness_lines(r: dict) -> list[str]:
    lines = [
        f"every packed case, the last-layer saving and the frozen-layer reuse within tolerance: {num(r.get('all_pass'))}"
    ]
    for case, c in r.get("packed_vs_padded", {}).items():
        if not c.get("packed"):
            lines.append(f"{case}: not packed ({c.get('reason')})")
            continue
        fp32, bf16 = c.get("fp32", {}), c.get("bf16", {})
        lines.append(
            f"{case}: fp32 {num(fp32.get('pass'))} (max |Δ| grads {num(fp32.get('grads'))}, rewards "
            f"{num(fp32.get('rewards'))}); bf16 {num(bf16.get('pass'))} (‖Δ‖/‖·‖ grads {num(bf16.get('grads'))}, "
            f"rewards {num(bf16.get('rewards'))}; bf16 vs fp32: padded {num(bf16.get('padded_vs_fp32'))}, "
            f"packed {num(bf16.get('packed_vs_fp32'))})"
        )
    for dtype, c in r.get("last_layer_rows_only", {}).items():
        lines.append(
            f"last layer on read rows, GRM, {dtype}: {num(c.get('pass'))} (grads {num(c.get('grads'))})"
        )
    flex = r.get("flex_attention", {})
    if flex:
        lines.append(
            f"flex_attention: packed {flex.get('packed')} ({flex.get('reason')}); padded vs SDPA {num(flex.get('padded_vs_sdpa'))}"
        )
    probe = r.get("probe", {})
    if probe:
        lines.append("probe: " + ", ".join(f"{k} {'exact' if v is None else v}" for k, v in probe.items()))
    frozen = r.get("frozen_reuse", {})
    if frozen:
        lines.append(f"reuse of frozen layers' outputs: {frozen.get('status') or num(frozen.get('pass'))}")
    return lines


def training_lines(r: dict) -> list[str]:
    lines = [
        f"bf16 matmul {num(r.get('bf16_matmul_tflops'))} TFLOP/s (n = {r.get('matmul_n')}), card peak {num(r.get('bf16_dense_peak_tflops'))}"
    ]
    for profile, runs in r.get("runs", {}).items():
        for trainer in ("trl", "rmguard-padded", "rmguard-packed"):
            t = runs.get(trainer)
            if t:
                lines.append(
                    f"{profile} {trainer}: {num(t.get('pairs_per_s'))} pairs/s, {num(t.get('tokens_per_s'))} tokens/s, "
                    f"{num(t.get('x_trl'))}× TRL, MFU {pct(t.get('mfu_vs_peak'))} of peak, "
                    f"{pct(t.get('mfu_vs_matmul'))} of matmul, peak {num(t.get('peak_gib'))} GiB"
                )
    return lines


def scoring_lines(r: dict) -> list[str]:
    lines = []
    for profile, methods in r.get("scoring", {}).items():
        for name in ("packed", "padded", "batch-size-1"):
            m = methods.get(name, {})
            lines.append(
                f"{profile} {name}: {num(m.get('responses_per_s'))} responses/s, {num(m.get('x_batch_size_1'))}× "
                f"batch size 1, max |Δ score| {num(m.get('max_abs_vs_batch_size_1'))}"
            )
    for kind, b in r.get("largest_train_batch", {}).items():
        largest = b.get("largest")
        if isinstance(largest, str):
            lines.append(f"largest training batch, {kind}: {largest}")
        else:
            peak = num(b.get("confirmed_peak_gib"))
            lines.append(f"largest training batch, {kind}: {num(largest)} pairs (peak then {peak} GiB)")
    return lines


def fsdp_lines(r: dict) -> list[str]:
    one, two, head = r.get("world_size_1", {}), r.get("two_ranks", {}), r.get("grm_lm_head", {})
    lines = []
    if one:
        lines.append(
            f"world size 1 ({one.get('backend')}) = unsharded: {num(one.get('pass'))} (loss {num(one.get('loss_max_abs'))}, weights {num(one.get('weights_max_abs'))})"
        )
    if two:
        lines.append(f"2 ranks = 1: {two.get('status') or num(two.get('pass'))}")
    if head:
        lines.append(
            f"GRM LM head: {num(head.get('lm_head_gib'))} GiB over {head.get('chosen_tokens')} chosen tokens × "
            f"{head.get('vocab_size')} vocabulary (peak {num(head.get('sft'))} vs {num(head.get('no_regularizer'))} GiB); "
            f"chunked cross-entropy: {num(head.get('sft_chunked')) if 'sft_chunked' in head else head.get('chunked')}"
        )
    return lines


def sampling_lines(r: dict) -> list[str]:
    lines = []
    for policy, b in r.get("best_of_n", {}).items():
        lines.append(
            f"Best-of-N {policy}: {num(b.get('samples_per_s'))} samples/s, {num(b.get('new_tokens_per_s'))} new tokens/s ({b.get('dtype')})"
        )
    for policy, s in r.get("rloo", {}).items():
        lines.append(
            f"RLOO {policy}: {num(s.get('step_s'))} s a step of {s.get('sequences_per_step')} sequences, {num(s.get('step_with_tracking_s'))} s with the tracking"
        )
    return lines


LINES: dict[str, Callable[[dict], list[str]]] = {
    "exactness": exactness_lines,
    "training": training_lines,
    "scoring": scoring_lines,
    "fsdp": fsdp_lines,
    "sampling": sampling_lines,
}


def part_lines(name: str, part: dict) -> list[str]:
    lines = LINES[name](part.get("results", {}))
    if part.get("status") != "ok":
        first = (part.get("error") or "").strip().splitlines()[-1:] or [""]
        lines.append(f"{part.get('status', 'missing').upper()}: {first[0][:200]}")
    return lines


def table(results: dict) -> str:
    """The short table printed last: one block per part, its status and time, then its numbers."""
    device = results.get("device", {})
    out = [
        f"{device.get('name')} · torch {device.get('torch')} · transformers {device.get('transformers')} · TRL {device.get('trl')}"
    ]
    out.append(f"{'part':<10} {'status':<8} {'s':>5}  numbers")
    for name in PART_NAMES:
        part = results.get(name, {"status": "not run"})
        lines = part_lines(name, part) if name in results else []
        out.append(
            f"{name:<10} {part.get('status', ''):<8} {part.get('seconds', 0):>5.0f}  {lines[0] if lines else ''}"
        )
        out += [f"{'':<26}{line}" for line in lines[1:]]
    return "\n".join(out)
