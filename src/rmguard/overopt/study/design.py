"""What a study compares: the objectives, the rows built from their seeds, the controls, and their names.

One home for these names, read by the pipeline, the analysis and the report (the analysis never imports
the pipeline).
"""

from __future__ import annotations

from typing import Any

OBJECTIVES: dict[str, dict[str, Any]] = {  # name → training settings that differ from the defaults
    "bt": {"objective": "bt"},
    "bsr": {"objective": "bsr", "bsr_lambda": 1e-3},  # the paper's λ
    "bsr_1e-2": {"objective": "bsr", "bsr_lambda": 1e-2},  # the stronger λ of the paper's RM-Bench table
    "grm": {"objective": "grm"},  # GRM with the SFT regularizer, α = 0.01
    "odin": {"objective": "odin"},  # ODIN: quality and length heads, scored by the quality head
    "inform": {"objective": "inform"},  # InfoRM's bottleneck at the reference's β = 0.1, d = 128
    "rrm": {"objective": "bt", "pair_augmentation": "rrm"},  # BT on RRM's pairs: 15× the world's pairs
}
BASELINE = "bt"
# BT's rewards after Huang et al.'s post-hoc length calibration (rmguard.calibration), fitted per world on
# both sides of the world's training pairs: a row of BT's model, no training of its own
LENGTH_CALIBRATED = "bt_length_calibrated"
ROWS = (*OBJECTIVES, LENGTH_CALIBRATED)  # what a study's ``objectives`` may name
# rows built from the BT members of each seed (no training of their own): name → how members are combined
ENSEMBLES = {"bt_ensemble": "mean", "bt_ensemble_wco": "wco", "bt_ensemble_uwo": "uwo"}  # bon.ensemble
WARM = "warm"  # the weight average of the BT members (they share one initialisation)
# selectors that need no reward model: a proxy is judged by what it adds over them
ORACLE = "gold (oracle)"
CONTROLS = (ORACLE, "length only", "finished, then short")
BACKBONE = "backbone (untrained)"  # the proxies' starting point's ‖h‖: the norm-dispersion baseline


def proxy_name(objective: str, seed: int) -> str:
    """The name of one proxy: its folder under proxies/, its scores file and its key in the analysis."""
    return f"{objective}-seed{seed}"


def sized_name(name: str, fraction: float) -> str:
    """A row of the data-size sweep: the objective trained on ``fraction`` of its world's pairs."""
    return name if fraction == 1 else f"{name}@{fraction:g}"
