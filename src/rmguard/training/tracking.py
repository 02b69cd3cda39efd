"""The CSV tracker training logs to (Accelerate's tracker interface), beside tensorboard and wandb."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from accelerate.tracking import GeneralTracker

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
