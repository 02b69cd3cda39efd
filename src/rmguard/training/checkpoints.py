"""The layout of a run's resumable checkpoints: ``<output_dir>/checkpoints/checkpoint-<step>/``.

Each folder holds what ``Accelerator.save_state`` writes (model, optimizer, scheduler, RNG states) and
``trainer_state.json`` with the global step and epoch; a folder without that file is not a checkpoint
(a save that did not finish). The final model of a run is saved apart, by :mod:`rmguard.training.modeling`.
Training writes and resumes these folders; ``rmguard diagnose`` reads their weights.

Under FSDP (rmguard's own ``fully_shard``, sharding.py) the model and optimizer are gathered into the
files a single-process run writes: ``model.safetensors`` (the same full state dict, so ``rmguard diagnose``
reads it as any other) and ``optimizer.bin`` (the optimizer state keyed by parameter name, which an FSDP
run resumes from).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from rmguard.errors import ConfigError
from rmguard.fileio import umask_modes

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator
    from torch import nn

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
WEIGHTS_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.bin"  # the name Accelerate's save_state gives the first optimizer


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The run's complete checkpoints, oldest step first."""
    root = Path(output_dir) / "checkpoints"
    found = (
        [p for p in root.glob(f"{CHECKPOINT_PREFIX}*") if (p / STATE_FILE).is_file()] if root.is_dir() else []
    )
    return sorted(found, key=lambda p: int(re.sub(r"\D", "", p.name) or 0))


def checkpoint_step(checkpoint: str | Path) -> int:
    """The global step a checkpoint was saved at."""
    return int(json.loads((Path(checkpoint) / STATE_FILE).read_text())["global_step"])


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    epoch: int,
    keep: int,
    sharded: tuple[nn.Module, torch.optim.Optimizer] | None = None,
) -> None:
    """Save the training state at ``step``, keeping the newest ``keep`` checkpoints.

    Every rank writes into one partial folder; the main rank renames it into place when all are done, so
    a run killed mid-save leaves no folder that looks complete. ``sharded``: an FSDP model and its
    optimizer, which Accelerate does not hold, gathered here."""
    target = Path(output_dir) / "checkpoints" / f"{CHECKPOINT_PREFIX}{step}"
    partial = target.with_name(f".{target.name}.partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if sharded is not None:
        _save_gathered(accelerator, partial, *sharded)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / STATE_FILE).write_text(json.dumps({"global_step": step, "epoch": epoch}))
        umask_modes(partial)  # the safetensors writer leaves 0600
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _save_gathered(
    accelerator: Accelerator, folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    from accelerate.utils import save

    from rmguard.training.sharding import full_optimizer_state_dict, full_state_dict

    weights, optimizer_state = full_state_dict(model), full_optimizer_state_dict(model, optimizer)
    # accelerate's save writes on the main process only and drops tied duplicates for safetensors.
    save(weights, folder / WEIGHTS_FILE, safe_serialization=True)
    save(optimizer_state, folder / OPTIMIZER_FILE, safe_serialization=False)


def load_sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer, checkpoint: str | Path) -> None:
    """Hand a checkpoint's gathered model and optimizer state to an FSDP model's shards (every rank reads
    the files: the checkpoint folder must be visible to all, as for Accelerate's own load_state)."""
    import torch
    from safetensors.torch import load_file

    from rmguard.training.sharding import load_full_optimizer_state_dict, load_full_state_dict

    checkpoint = Path(checkpoint)
    if not (checkpoint / WEIGHTS_FILE).is_file() or not (checkpoint / OPTIMIZER_FILE).is_file():
        raise ConfigError(
            f"{checkpoint}: no gathered {WEIGHTS_FILE} and {OPTIMIZER_FILE} to resume an FSDP run from"
        )
    load_full_state_dict(model, load_file(str(checkpoint / WEIGHTS_FILE)))
    state = torch.load(checkpoint / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    load_full_optimizer_state_dict(model, optimizer, state)


def resume_path(spec: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint ``resume_from_checkpoint`` names: a folder, or 'latest' (None when there is none yet)."""
    if not spec:
        return None
    if spec == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(spec)
    if not (path / STATE_FILE).is_file():
        raise ConfigError(f"{spec}: not an rmguard checkpoint (no {STATE_FILE})")
    return path


def load_checkpoint_weights(model: nn.Module, checkpoint: str | Path) -> int:
    """Load the model weights of a resumable checkpoint into ``model`` (built from the run's final output
    folder), strictly; returns the checkpoint's step. Reads the ``model.safetensors`` that
    ``Accelerator.save_state`` writes for single-process and DDP runs, and FSDP runs gather (DeepSpeed's
    checkpoints are its own shards)."""
    from safetensors.torch import load_file

    checkpoint = Path(checkpoint)
    weights = checkpoint / WEIGHTS_FILE
    if not (checkpoint / STATE_FILE).is_file() or not weights.is_file():
        raise ConfigError(f"{checkpoint}: not an rmguard checkpoint with {WEIGHTS_FILE}")
    try:
        model.load_state_dict(load_file(str(weights)), strict=True)
    except RuntimeError as error:
        raise ConfigError(
            f"{checkpoint}: weights do not match the final model's architecture: {error}"
        ) from None
    return checkpoint_step(checkpoint)
