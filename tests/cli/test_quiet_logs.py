"""Off a terminal a sub-command's log holds rmguard's own lines: no load reports or bars from libraries,
in the CLI's process or in the worker processes it starts (the demo trains its proxies in fresh ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

QUIET_THEN_WORK = """
import multiprocessing, sys
from rmguard.cli import _quiet_libraries

_quiet_libraries()
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM

for _ in tqdm(range(3), desc="a library's own bar"):
    pass
# a backbone cut to its first layer: transformers reports the left-out layers' weights as unexpected
worker = multiprocessing.get_context("spawn").Process(
    target=AutoModelForCausalLM.from_pretrained, args=(sys.argv[1],), kwargs={"num_hidden_layers": 1}
)
worker.start()
worker.join()
print("exit", worker.exitcode)
"""


def test_libraries_and_worker_processes_are_quiet_off_a_terminal(tiny_llama: Path) -> None:
    quiet = ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE")
    env = {k: v for k, v in os.environ.items() if k not in quiet}
    env["PYTHONPATH"] = str(Path(__file__).parents[2] / "src")
    result = subprocess.run(
        [sys.executable, "-c", QUIET_THEN_WORK, str(tiny_llama)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.stdout == "exit 0\n", result.stderr
    assert result.stderr == ""
