"""Eq. 14 of the paper: drawing grasps from a heat map of success logits.

``q(a | s) = exp(beta log xi(s, a)) / sum_a' exp(beta log xi(s, a'))`` over the discretised
action space: a softmax of ``beta * log sigmoid(logit)`` over the action cells, so for
large beta (paper: 100) nearly all draws go to the cells of highest estimated success.
"""

from typing import Optional

import torch
from torch.nn import functional


def eq14_log_probs(logits: torch.Tensor, allowed: torch.Tensor, beta: float) -> torch.Tensor:
    """Log-probabilities (S, K) of eq. 14 over K flat cells of success logits (S, K).

    Args:
        logits: (S, K) heat-map logits, xi = sigmoid(logit).
        allowed: (K,) bool, the cells that are actions (others get probability 0).
        beta: inverse temperature > 0.
    """
    if logits.ndim != 2 or allowed.shape != logits.shape[1:]:
        raise ValueError(f'logits must be (S, K) and allowed (K,), got {tuple(logits.shape)} '
                         f'and {tuple(allowed.shape)}')
    energy = beta * functional.logsigmoid(logits)
    energy = energy.masked_fill(~allowed, float('-inf'))
    return energy - torch.logsumexp(energy, dim=1, keepdim=True)


def sample_eq14(logits: torch.Tensor, allowed: torch.Tensor, beta: float, n: int,
                generator: Optional[torch.Generator] = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """n independent draws per state from eq. 14.

    Returns:
        (cells (S, n) int64 flat indices, their log-probabilities (S, n)).
    """
    log_q = eq14_log_probs(logits, allowed, beta)
    cells = torch.multinomial(log_q.exp(), n, replacement=True, generator=generator)
    return cells, torch.gather(log_q, 1, cells)
