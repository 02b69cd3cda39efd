"""Cached-feature proxies: a small trainable adapter and head over frozen backbone features (``features.py``).

The study option ``proxies: cached``. A proxy is

    h = f + U · gelu(V f),    r = w · h

with f the frozen backbone's reward-token state, V ∈ R^{k×H} (N(0, 1/H)), U ∈ R^{H×k} (zero at the start,
so the proxy starts as rmguard's reward model on the frozen backbone) and w the reward head (no bias,
N(0, 1/(H+1)) as in Hong et al.). ‖h‖ is free to spread: nothing normalises it after the adapter, whereas
the backbone's final norm holds ‖f‖ in a narrow band (the report's baseline row). The losses are
``training/objectives.py``'s: BT, BSR (with the configured B), and GRM = (1 − α)·BT + α·L_reg with the SFT
regularizer over the adapter's states at the chosen responses' tokens, read through the frozen LM head with
the top-K log-softmax of ``features.py`` (exact at the start, an approximation of the tail after), and
ODIN's loss with a second, length head on the same h (scored by the quality head w only).
A fit is a few hundred small steps: about a second on one CPU thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rmguard.training import objectives
from rmguard.training.modeling import init_linear_head


@dataclass
class FitSettings:
    """How a cached proxy is fitted (one setting for every objective)."""

    epochs: int = 3
    learning_rate: float = 1e-3
    batch_size: int = 16
    rank: int = 64


class CachedProxy(nn.Module):
    """h = f + U gelu(V f), r = w · h (module docstring); ODIN's proxies also have a length head w_L,
    trained beside w and never read when scoring."""

    def __init__(self, hidden_size: int, rank: int, length_head: bool = False):
        super().__init__()
        self.down = nn.Linear(hidden_size, rank, bias=False)
        nn.init.normal_(self.down.weight, std=1 / math.sqrt(hidden_size))
        self.up = nn.Linear(rank, hidden_size, bias=False)
        nn.init.zeros_(self.up.weight)
        self.head = nn.Linear(hidden_size, 1, bias=False)
        init_linear_head(self.head)
        self.length_head = nn.Linear(hidden_size, 1, bias=False) if length_head else None
        if self.length_head is not None:
            init_linear_head(self.length_head)

    def hidden(self, features: Tensor) -> Tensor:
        return features + self.up(nn.functional.gelu(self.down(features)))

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """(rewards [N], hidden states h [N, H])."""
        h = self.hidden(features)
        return self.head(h).squeeze(-1), h


class TokenTable:
    """GRM's cached token arrays as tensors, with the LM-head rows re-indexed to the rows kept."""

    def __init__(self, features: dict[str, np.ndarray]):
        self.row_of = {int(r): k for k, r in enumerate(features["token_rows"])}
        self.offsets = features["token_offsets"]
        self.states = torch.from_numpy(np.ascontiguousarray(features["token_states"], dtype=np.float32))
        local = np.searchsorted(features["vocab_ids"], features["token_support"])
        self.support = torch.from_numpy(local.astype(np.int64))
        self.tail = torch.from_numpy(features["token_tail"].astype(np.float32))
        self.lm_head = torch.from_numpy(features["vocab_rows"].astype(np.float32))

    def tokens(self, responses: np.ndarray) -> tuple[Tensor, Tensor]:
        """(token rows, which of ``responses`` each belongs to) for these response indices."""
        spans = [
            (self.offsets[self.row_of[int(r)]], self.offsets[self.row_of[int(r)] + 1]) for r in responses
        ]
        rows = np.concatenate([np.arange(a, b) for a, b in spans]) if spans else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(spans)), [b - a for a, b in spans])
        return torch.from_numpy(rows), torch.from_numpy(owner)

    def sequence_logps(self, proxy: CachedProxy, responses: np.ndarray) -> Tensor:
        """S̃(y) per response: Σ_t [e_{y_t}·h_t − log(Σ_{v∈V_t} exp(e_v·h_t) + T_t)] (features.py)."""
        rows, owner = self.tokens(responses)
        h = proxy.hidden(self.states[rows])  # [T, H]
        scores = torch.einsum("th,tkh->tk", h, self.lm_head[self.support[rows]])  # [T, K + 1]
        normaliser = torch.logsumexp(torch.cat([scores, self.tail[rows, None]], dim=1), dim=1)
        token_logps = scores[:, 0] - normaliser
        return torch.zeros(len(responses)).index_add(0, owner, token_logps)


def odin_loss(proxy: CachedProxy, hidden: Tensor, rewards: Tensor, lengths: Tensor) -> Tensor:
    """objectives.odin on one batch: quality rewards ``rewards``, the length head on ``hidden``, the
    responses' lengths in tokens (chosen rows first), the reference's coefficients (1, 1, 1)."""
    half = len(rewards) // 2
    length_rewards = proxy.length_head(hidden).squeeze(-1)
    return objectives.odin(
        rewards[:half],
        rewards[half:],
        length_rewards[:half],
        length_rewards[half:],
        lengths[:half],
        lengths[half:],
        proxy.head.weight,
        proxy.length_head.weight,
    )


def pair_loss(
    objective: dict[str, Any],
    rewards: Tensor,
    batch_size: int,
    logps: Tensor | None = None,
) -> Tensor:
    """The objective's loss from objectives.py for one batch (rewards of chosen rows first); ODIN's is
    :func:`odin_loss`."""
    half = len(rewards) // 2
    r_c, r_r = rewards[:half], rewards[half:]
    name = objective["objective"]
    if name == "bt":
        return objectives.bt(r_c, r_r)
    if name == "bsr":
        return objectives.bsr(r_c, r_r, objective.get("bsr_lambda", 1e-3), batch_size=batch_size)
    if name == "grm":
        regularizer = objectives.grm_sft(logps, objective.get("grm_beta", 0.1))
        return objectives.grm_combine(objectives.bt(r_c, r_r), regularizer, objective.get("grm_alpha", 0.01))
    raise ValueError(f"the cached proxies have no objective '{name}'")


def fit_cached_proxy(
    features: Tensor,
    pairs: np.ndarray,
    objective: dict[str, Any],
    settings: FitSettings,
    init_seed: int,
    order_seed: int,
    tokens: TokenTable | None = None,
    lengths: Tensor | None = None,
) -> CachedProxy:
    """Fit one proxy on ``pairs`` [M, 2] (chosen, rejected response indices into ``features`` [R, H]);
    GRM reads ``tokens``, ODIN ``lengths`` [R] (response tokens).

    ``init_seed`` fixes the starting weights and ``order_seed`` the order of the batches, so that proxies
    can share an initialisation and differ in their data (WARM's condition).
    """
    odin = objective["objective"] == "odin"
    torch.manual_seed(init_seed)
    proxy = CachedProxy(features.shape[1], settings.rank, length_head=odin)
    optimizer = torch.optim.Adam(proxy.parameters(), lr=settings.learning_rate)
    rng = np.random.default_rng(order_seed)
    for _ in range(settings.epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), settings.batch_size):
            batch = pairs[order[start : start + settings.batch_size]]
            rows = np.concatenate([batch[:, 0], batch[:, 1]])
            rewards, hidden = proxy(features[rows])
            if odin:
                loss = odin_loss(proxy, hidden, rewards, lengths[rows])
            else:
                logps = tokens.sequence_logps(proxy, batch[:, 0]) if objective["objective"] == "grm" else None
                loss = pair_loss(objective, rewards, settings.batch_size, logps)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return proxy


@torch.no_grad()
def score_cached(proxy: CachedProxy, features: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(rewards [R], ‖h‖ [R]) of every cached response."""
    rewards, hidden = proxy(features)
    return rewards.numpy(), hidden.norm(dim=1).numpy()
