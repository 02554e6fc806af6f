"""The loss a network is trained and validated on: a forecast's error against its
targets, summed over the origins scored (losses.py walks the training batches,
validation_losses.py the validation origins; both score with this)."""

from __future__ import annotations

import contextlib

import torch

from rnncast.config import ModelConfig

# (summed loss over the scored origins, with its graph; the number of origins).
Loss = tuple[torch.Tensor, torch.Tensor]


class LossFunction:
    """``model.loss`` of (B, T, H, Q) forecasts: the pinball loss of each quantile, or
    the squared or absolute error of a point forecast; on CUDA under bfloat16."""

    def __init__(self, model: ModelConfig, device: torch.device) -> None:
        self.kind = model.loss
        self.quantiles = torch.tensor(model.output_quantiles, device=device)
        self.enabled = device.type == "cuda"
        self.device_type = device.type

    def score(
        self,
        forecasts: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        weights: torch.Tensor,
    ) -> Loss:
        """Summed loss over the valid origins of (B, T, H, Q) forecasts, each series
        weighted by ``weights`` (B,), and the number of origins."""
        errors = targets.unsqueeze(-1).float() - forecasts.float()  # (B, T, H, Q)
        if self.kind == "quantile":
            pointwise = torch.maximum(self.quantiles * errors, (self.quantiles - 1) * errors)
        elif self.kind == "mse":
            pointwise = errors.square()
        else:
            pointwise = errors.abs()
        per_origin = pointwise.mean(dim=(2, 3)) * weights[:, None]  # (B, T)
        return (per_origin * mask).sum(), mask.sum()

    def autocast(self) -> contextlib.AbstractContextManager:
        """Where the network's forward pass runs: bfloat16 on CUDA, which keeps
        float32's range, so no loss scaling is needed."""
        return torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.enabled)
