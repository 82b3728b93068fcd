"""L2-SP: fine-tune while staying close to the starting point (Li et al., 2018, "Explicit Inductive Bias
for Transfer Learning with Convolutional Networks").

    loss = task loss + weight * sum_p ||p - p0||^2      over the trainable parameters p (p0: their start)

Plain weight decay pulls weights toward 0, which for a pretrained tower means away from what it
knows; L2-SP pulls them toward the pretrained values instead. For code search this is the lever
against the out-of-corpus loss of fine-tuning: the fine-tuned tower is kept near zero-shot MiniLM,
which generalises to code it never saw. The learnable logit scale is not a pretrained weight and is
left free.

:class:`L2SPRegularised` wraps any method with ``loss(batch) -> (loss, logs)`` (the trainer's
interface) and records the penalty as ``l2sp`` in the logs. Its ``state_dict`` is the wrapped
method's, so checkpoints and saved models are the same as without it.
"""

from __future__ import annotations

import torch
from torch import nn

FREE_PARAMETERS = ("log_logit_scale",)  # learnable scalars that are not pretrained weights


def l2sp_penalty(parameters: list[torch.Tensor], anchors: list[torch.Tensor]) -> torch.Tensor:
    """sum_i ||parameters[i] - anchors[i]||^2, a scalar (0 for no parameters)."""
    if len(parameters) != len(anchors):
        raise ValueError(f"{len(parameters)} parameters but {len(anchors)} anchors")
    total = torch.zeros(())
    for p, p0 in zip(parameters, anchors):
        total = total.to(p.device) + (p - p0).pow(2).sum()
    return total


class L2SPRegularised(nn.Module):
    """``method`` with ``weight * ||theta - theta_0||^2`` added to its loss (theta: its trainable parameters
    at construction, except :data:`FREE_PARAMETERS`).

    Build it before a checkpoint is loaded: the anchors are the starting weights, and a resumed run
    rebuilds the model from the same start, so resuming keeps the same anchors.
    """

    def __init__(self, method: nn.Module, weight: float):
        super().__init__()
        if weight < 0:
            raise ValueError(f"the L2-SP weight must be >= 0, got {weight}")
        self.method, self.weight = method, float(weight)
        self.names = [n for n, p in method.named_parameters()
                      if p.requires_grad and n.rsplit(".", 1)[-1] not in FREE_PARAMETERS]
        for i, name in enumerate(self.names):  # buffers: they follow the method to its device
            self.register_buffer(f"anchor_{i}", method.get_parameter(name).detach().clone(), persistent=False)

    def anchors(self) -> list[torch.Tensor]:
        return [getattr(self, f"anchor_{i}") for i in range(len(self.names))]

    def penalty(self) -> torch.Tensor:
        return l2sp_penalty([self.method.get_parameter(n) for n in self.names], self.anchors())

    def loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        loss, logs = self.method.loss(batch)
        penalty = self.penalty()
        return loss + self.weight * penalty, {**logs, "l2sp": float(penalty.detach())}

    def state_dict(self, *args, **kwargs):
        return self.method.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.method.load_state_dict(state_dict, strict=strict, assign=assign)
