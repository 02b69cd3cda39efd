"""GRM-DPO's reference (Yang et al. 2024): the summed response log-probs S_ref(y) of the frozen starting
model, computed once before training (``grm_reference: precomputed``) or by a frozen copy at every step
(``model``)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from rmguard.training.collate import ReferenceLogps, model_inputs, pair_key
from rmguard.training.modeling import RewardModel
from rmguard.training.packing import PairCollator
from rmguard.training.sharding import ShardingPlan, shard_model
from rmguard.training.tokenization import PairFeatures


@torch.no_grad()
def precompute_reference_logps(
    model: RewardModel, features: list[PairFeatures], collator: PairCollator, batch_size: int
) -> ReferenceLogps:
    """GRM-DPO reference log-probs of the starting model, computed once: pair tokens → (S(y_c), S(y_r))."""
    was_training = model.training
    model.eval()
    reference: ReferenceLogps = {}
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        logps = model(**model_inputs(collator(chunk))).logps
        for i, feature in enumerate(chunk):
            reference[pair_key(feature)] = (logps[i].item(), logps[len(chunk) + i].item())
    model.train(was_training)
    return reference


def live_reference(
    model: RewardModel, plan: ShardingPlan | None, mixed_precision: str
) -> Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """A frozen copy of the starting model that adds reference log-probs to each batch (sharded as the
    trained model is, under FSDP)."""
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    if plan is not None:
        shard_model(reference, reference.backbone, plan, mixed_precision)

    def add_reference(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            logps = reference(**model_inputs(batch)).logps
        half = len(logps) // 2
        return {**batch, "ref_chosen_logps": logps[:half], "ref_rejected_logps": logps[half:]}

    return add_reference
