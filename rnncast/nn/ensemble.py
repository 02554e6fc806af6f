"""Several forecasters of the same shape, combined by the median of each quantile.

Members are trained in turn or side by side (ensembles.py) and differ in their seed and in
the TBPTT chunk they were trained over. Forecasting (forecasting.py) runs them one
at a time over each batch and takes ``median_of_members`` of their outputs, so a
batch holds one member's summaries at once; ``forward`` does the same for callers
that use an Ensemble as one network.

The median of each quantile keeps the quantiles in order (each member's are, and
order statistics of ordered vectors are ordered), and one member far off, a
network that diverged from a bad seed, moves it little, where it would move a mean.
"""

from __future__ import annotations

import torch
from torch import nn

from rnncast.nn.forecaster import Forecaster, State


class Ensemble(nn.Module):
    """``members`` forecasters used as one: (B, T, H, Q) medians over the members."""

    def __init__(self, members: list[Forecaster]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an Ensemble needs two members at least; use the Forecaster alone")
        self.members = nn.ModuleList(members)

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.members[0].quantiles

    def forward(
        self,
        inputs: torch.Tensor,
        future: torch.Tensor,
        codes: torch.Tensor,
        state: State | None = None,
    ) -> tuple[torch.Tensor, State]:
        """Each member over the whole of ``inputs`` (an Ensemble carries no state),
        and each quantile's median over them."""
        if state is not None:
            raise ValueError("an Ensemble reads whole histories; it carries no state")
        forecasts = [member(inputs, future, codes)[0] for member in self.members]
        return median_of_members(torch.stack(forecasts)), ()

    def clip_recurrent_weights_(self) -> None:
        for member in self.members:
            member.clip_recurrent_weights_()


def median_of_members(forecasts: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (...): the median along the first dimension, the mean of the two
    middle values when M is even (torch.median would take the lower one)."""
    ordered = forecasts.sort(dim=0).values
    count = forecasts.shape[0]
    return (ordered[(count - 1) // 2] + ordered[count // 2]) / 2
