"""Two CPU processes (gloo): BSR's global scope over 2×B pairs equals one process over the same 2B pairs,
and the training loop runs data-parallel under a real launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from helpers import REPO

LOSS_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from accelerate import Accelerator
    from rmguard.training.collate import PaddedPairCollator
    from rmguard.training.config import load_config
    from rmguard.data import load_pairs
    from rmguard.training.tokenization import tokenize_pairs
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import build_reward_model

    model_path, data, out, mode = sys.argv[1:5]
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model, tokenizer = build_reward_model(model_path)
    features = tokenize_pairs(load_pairs(data)[0], tokenizer, 64)[0][:8]
    if mode == "split":  # each rank gets its own half of the same 8 pairs
        half = len(features) // accelerator.num_processes
        features = features[accelerator.process_index * half:(accelerator.process_index + 1) * half]
    config = load_config(None, {"train_file": data, "objective": "bsr", "bsr_lambda": 0.1, "bsr_scope": "global"})
    model = accelerator.prepare(model)
    batch = PaddedPairCollator(tokenizer.pad_token_id)(features)
    loss, _ = RewardLoss(config)(model(**batch), batch)
    accelerator.backward(loss)
    head = accelerator.unwrap_model(model).head.weight.grad
    losses = accelerator.gather(loss.detach()[None])
    if accelerator.is_main_process:
        json.dump({"loss": losses.mean().item(), "grad": head.flatten().tolist()}, open(out, "w"))
    accelerator.wait_for_everyone()  # no rank tears gloo down while another still uses it
    accelerator.end_training()  # destroys the process group: gloo aborts at exit otherwise
""")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(script, *args, nproc=2):
    # The fault handler prints every thread's Python stack when a rank dies of a signal (a C++ abort says
    # only "terminate called"), so a rare crash names the line it happened at.
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(nproc),
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
        str(script),
        *map(str, args),
    ]
    # A session of its own, so that a timeout takes the launcher's worker processes down with it.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=280)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def failure(result: subprocess.CompletedProcess, chars: int = 6000) -> str:
    """The end of a launch's stderr without the libraries' warnings, which otherwise fill the message."""
    lines = result.stderr.splitlines()
    noise = ("Warning:", "warnings.warn(", "output = self._register_pre_backward_hook")
    kept = [line for line in lines if not any(n in line for n in noise)]
    return "\n".join(kept)[-chars:]


@pytest.mark.timeout(300)
def test_global_bsr_over_two_processes_equals_one_process(tiny_llama, synthetic_data, tmp_path):
    script = tmp_path / "loss.py"
    script.write_text(LOSS_SCRIPT)
    two = launch(script, tiny_llama, synthetic_data["train"], tmp_path / "two.json", "split", nproc=2)
    assert two.returncode == 0, failure(two)
    one = launch(script, tiny_llama, synthetic_data["train"], tmp_path / "one.json", "all", nproc=1)
    assert one.returncode == 0, failure(one)
    two_result = json.loads((tmp_path / "two.json").read_text())
    one_result = json.loads((tmp_path / "one.json").read_text())
    assert two_result["loss"] == pytest.approx(one_result["loss"], abs=1e-6)
    torch.testing.assert_close(
        torch.tensor(two_result["grad"]), torch.tensor(one_result["grad"]), atol=1e-6, rtol=1e-5
    )


TRAIN_SCRIPT = textwrap.dedent("""
    import sys
    from rmguard.training.config import load_config
    from rmguard.training.trainer import train
    train(load_config(sys.argv[1]))
""")


@pytest.mark.timeout(300)
def test_training_runs_data_parallel(tiny_llama, synthetic_data, tmp_path):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": str(tiny_llama),
                "train_file": str(synthetic_data["train"]),
                "eval_file": str(synthetic_data["eval"]),
                "output_dir": str(tmp_path / "out"),
                "objective": "bsr",
                "bsr_scope": "global",
                "learning_rate": 3e-3,
                "num_train_epochs": 3,
                "per_device_train_batch_size": 4,
                "save_steps": 10,
                "disable_tqdm": True,
                "report_to": ["none"],
            }
        )
    )
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    run = launch(script, config)
    assert run.returncode == 0, failure(run)
    meta = json.loads((tmp_path / "out" / "rmguard.json").read_text())
    assert meta["global_step"] == 36  # 96 pairs / (4 pairs × 2 processes) × 3 epochs
    assert meta["eval_metrics"]["pairs"] == 64 and meta["eval_metrics"]["accuracy"] >= 0.9
    assert (tmp_path / "out" / "checkpoints" / "checkpoint-30" / "trainer_state.json").is_file()
