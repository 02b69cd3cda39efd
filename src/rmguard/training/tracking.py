"""The CSV tracker training logs to (Accelerate's tracker interface), beside tensorboard and wandb, and the
console lines of each logged step and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker
from tqdm.auto import tqdm

from rmguard.fileio import atomic_write_json


class CSVTracker(GeneralTracker):
    """Accelerate tracker writing ``step,metric,value`` rows to ``<output_dir>/logs/metrics.csv``."""

    name = "csv"
    requires_logging_directory = True
    main_process_only = True

    def __init__(self, logging_dir: str | Path):
        super().__init__()
        self.path = (
            Path(logging_dir) / "metrics.csv"
        )  # written from the first metrics: a refused run leaves none

    @property
    def tracker(self) -> Path:
        return self.path

    def store_init_configuration(self, values: dict[str, Any]) -> None:
        atomic_write_json(self.path.parent / "config.json", values)

    def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.write_text("step,metric,value\n")
        with self.path.open("a") as handle:
            for name, value in values.items():
                handle.write(f"{step},{name},{value}\n")


# rmguard's metric names → the names TRL's console shows (others lose their train/ prefix; eval/ becomes eval_)
CONSOLE_NAMES = {"train/loss": "loss", "train/lr": "learning_rate"}


def console_line(step: int, max_steps: int, metrics: dict[str, Any]) -> str:
    """A logged step's metrics as TRL's console shows them: a dict, floats to 4 significant digits (and the
    step, which a log without the progress bar needs)."""
    shown: dict[str, Any] = {"step": f"{step}/{max_steps}"}
    for name, value in metrics.items():
        key = CONSOLE_NAMES.get(name) or name.removeprefix("train/").replace("eval/", "eval_")
        shown[key] = f"{value:.4g}" if isinstance(value, float) else value
    return str(shown)


def print_metrics(step: int, max_steps: int, metrics: dict[str, Any], main_process: bool) -> None:
    """Print :func:`console_line` above the progress bar (on the main process only)."""
    if main_process:
        tqdm.write(console_line(step, max_steps, metrics))
