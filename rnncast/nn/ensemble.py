"""Several forecasters of the same shape, combined by the median of each quantile.

Members are trained one after another (fitting.py) and differ in their seed and in
the TBPTT chunk they were trained over; forecasting uses an Ensemble exactly as it
uses one Forecaster: ``encode`` returns every member's summaries side by side and
``decode`` splits them, lets each member decode its own, and takes the median.

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

    def encode(
        self, inputs: torch.Tensor, codes: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """(B, T, F) -> (B, T, M·D): the members' summaries side by side."""
        if state is not None:
            raise ValueError("an Ensemble encodes whole histories; it carries no state")
        summaries = [member.encode(inputs, codes)[0] for member in self.members]
        return torch.cat(summaries, dim=-1), ()

    def decode(self, summaries: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """(B, T, M·D) and (B, T, H, Ff) -> (B, T, H, Q): each quantile's median over
        the members (the mean of the middle two for an even number)."""
        parts = summaries.chunk(len(self.members), dim=-1)
        forecasts = torch.stack(
            [member.decode(part, future) for member, part in zip(self.members, parts, strict=True)]
        )  # (M, B, T, H, Q)
        return median_of_members(forecasts)

    # encode, then decode: the same composition as one Forecaster's.
    forward = Forecaster.forward

    def clip_recurrent_weights_(self) -> None:
        for member in self.members:
            member.clip_recurrent_weights_()


def median_of_members(forecasts: torch.Tensor) -> torch.Tensor:
    """(M, ...) -> (...): the median along the first dimension, the mean of the two
    middle values when M is even (torch.median would take the lower one)."""
    ordered = forecasts.sort(dim=0).values
    count = forecasts.shape[0]
    return (ordered[(count - 1) // 2] + ordered[count // 2]) / 2
