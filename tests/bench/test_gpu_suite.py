"""bench/gpu_suite.py's dry run (every part, on the CPU at tiny sizes) so the suite cannot rot between GPU
runs; a part that fails or runs out of time is recorded and the others go on; bench/gpu_docs.py writes the
docs section and the configs' cost lines from the JSON, and the committed docs are its output."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
PARTS = {"exactness", "training", "scoring", "fsdp", "sampling"}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gpu") / "dry.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(
        [sys.executable, str(BENCH / "gpu_suite.py"), "--dry-run", "--output", str(out)],
        capture_output=True, text=True, env=env, timeout=1200,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout[done.stdout.rindex("part       status") :]  # the short table, printed last
    assert all(f"\n{name} " in table for name in PARTS)
    return json.loads(out.read_text())


@pytest.mark.timeout(1300)
def test_the_dry_run_runs_every_part_and_records_its_numbers(dry_run):
    assert set(dry_run) == {"device"} | PARTS
    assert dry_run["device"]["dry_run"] is True and dry_run["device"]["torch"]
    for name in PARTS:
        assert dry_run[name]["status"] == "ok", dry_run[name].get("error")
    exact = dry_run["exactness"]["results"]
    assert exact["all_pass"] is True
    assert set(exact["packed_vs_padded"]) == {"sdpa/standard", "sdpa/grm", "eager/standard", "eager/grm"}
    assert exact["packed_vs_padded"]["sdpa/grm"]["fp32"]["logps"] <= 1e-5
    assert exact["probe"] == {"rmguard_packed_sdpa": None, "rmguard_packed_eager": None}
    assert (
        exact["flex_attention"]["packed"] is False and "no packed form" in exact["flex_attention"]["reason"]
    )
    assert exact["frozen_reuse"]["pass"]
    for profile in ("uf", "hh"):  # UltraFeedback-like and HH-like lengths, one after the other
        runs = dry_run["training"]["results"]["runs"][profile]
        for trainer in ("trl", "rmguard-padded", "rmguard-packed"):
            assert _positive(runs[trainer]["pairs_per_s"]) and _positive(runs[trainer]["mfu_vs_matmul"])
            assert runs[trainer]["steps_timed"] == 2
        scoring = dry_run["scoring"]["results"]["scoring"][profile]
        assert scoring["packed"]["packed"] is True and scoring["padded"]["packed"] is False
        for method in ("packed", "padded", "batch-size-1"):
            assert _positive(scoring[method]["responses_per_s"])
            assert scoring[method]["max_abs_vs_batch_size_1"] <= 1e-5  # fp32 on the CPU
    fsdp = dry_run["fsdp"]["results"]
    assert fsdp["world_size_1"]["pass"] and fsdp["two_ranks"]["pass"]
    assert fsdp["grm_lm_head"]["chunked"] == "not in this build" or "sft_chunked" in fsdp["grm_lm_head"]
    sampling = dry_run["sampling"]["results"]
    for policy in ("smollm2", "llama-1b"):  # two RLOO runs in one process, as on the GPU
        assert _positive(sampling["best_of_n"][policy]["samples_per_s"])
        assert _positive(sampling["rloo"][policy]["step_s"])


def test_a_part_that_fails_or_runs_out_of_time_is_recorded(tmp_path):
    suite = _module("gpu_suite")
    tokenizer = suite.tokenizer_folder(None)
    late = suite.run_part("scoring", 0.5, True, tmp_path, tokenizer)
    assert late["status"] == "timeout" and late["error"].startswith("stopped at its 0 s limit")
    broken = suite.run_part("no-such-part", 300, True, tmp_path, tokenizer)  # its child exits with an error
    assert broken["status"] == "error" and "invalid choice: 'no-such-part'" in broken["error"]


def test_the_docs_generator_writes_the_section_and_cost_lines_from_the_json(dry_run, tmp_path):
    docs_module = _module("gpu_docs")
    docs = tmp_path / "performance.md"
    shutil.copy(REPO / "docs" / "performance.md", docs)
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(REPO / "examples" / "overoptimization" / "ultrafeedback.yaml", configs)
    pages = docs_module.render(dry_run, docs, configs)
    text = pages[docs]
    assert "**Dry run on the CPU at tiny sizes**" in text and dry_run["device"]["name"] in text
    for name in PARTS:
        assert f"**{name}** (ok, " in text
    assert "| uf | rmguard-packed |" in text and "No GPU run has been made yet" not in text
    # A dry run measures no GPU: the config's cost line still says it is not measured.
    assert "not measured yet" in pages[configs / "ultrafeedback.yaml"]
    docs.write_text(text)
    assert docs_module.render(dry_run, docs, configs)[docs] == text  # idempotent


def test_a_measured_run_states_the_pool_cost_in_the_config(dry_run, tmp_path):
    docs_module = _module("gpu_docs")
    measured = json.loads(json.dumps(dry_run))
    measured["device"] |= {"dry_run": False, "name": "NVIDIA H100 80GB HBM3"}
    measured["sampling"]["results"]["best_of_n"]["llama-1b"]["samples_per_s"] = 10.0
    measured["sampling"]["results"]["settings"]["max_new_tokens"] = 512
    lines = docs_module.cost_lines(
        measured, {"prompts": 4000, "bon_prompts": 200, "bon_n": 256, "max_new_tokens": 512}
    )
    # 4000 prompts × 8 styles + 200 × 256 Best-of-N samples = 83,200 responses at 10 a second: 2.3 h
    assert "NVIDIA H100 80GB HBM3" in lines and "83200 responses: about 2.3 h" in lines


def test_the_committed_docs_are_the_generators_output():
    done = subprocess.run(
        [sys.executable, str(BENCH / "gpu_docs.py"), "--check"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
