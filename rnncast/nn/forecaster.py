"""The forecaster network: a recurrent encoder and a multi-horizon quantile head.

At every step t the encoder's state summarises the history up to t, and the
head turns it into forecasts of the next H steps (forking sequences, MQ-RNN,
Wen et al. 2017, arXiv:1711.11053): a global layer maps the state to a hidden
vector per future step, a layer shared by all future steps adds that step's
known future inputs, and a last shared layer gives its quantiles.

Quantiles never cross: the head predicts the median and positive gaps to the
neighbouring quantiles (softplus), summed outwards.
"""

from __future__ import annotations

import torch
from torch import nn

from rnncast.config import ModelConfig, embedding_size
from rnncast.nn.data_linear import data_linear
from rnncast.nn.indrnn import IndRNN

State = tuple[torch.Tensor, ...]


class TorchRecurrent(nn.Module):
    """torch's LSTM, GRU or Elman RNN (cuDNN on CUDA) with the state as a tuple."""

    def __init__(self, kind: str, inputs: int, config: ModelConfig, hidden: int, layers: int):
        super().__init__()
        options = {"nonlinearity": config.activation} if kind == "rnn" else {}
        module = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        self.rnn = module(
            inputs,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=config.dropout if layers > 1 else 0.0,
            **options,
        )
        self.is_lstm = kind == "lstm"

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is not None:
            state = state if self.is_lstm else state[0]
        y, new_state = self.rnn(x, state)
        return y, (tuple(new_state) if self.is_lstm else (new_state,))


def _indrnn(inputs: int, config: ModelConfig, hidden: int, layers: int, steps: int) -> nn.Module:
    return IndRNN(
        inputs,
        hidden,
        num_layers=layers,
        dropout=config.dropout,
        residual=config.residual,
        max_steps=steps,
    )


CELLS = {
    "lstm": lambda i, c, h, n, steps: TorchRecurrent("lstm", i, c, h, n),
    "gru": lambda i, c, h, n, steps: TorchRecurrent("gru", i, c, h, n),
    "rnn": lambda i, c, h, n, steps: TorchRecurrent("rnn", i, c, h, n),
    "indrnn": _indrnn,
}


class Forecaster(nn.Module):
    """Encoder over the past, forking quantile head over the next H steps.

    ``forward(inputs (B, T, F), future (B, T, H, Ff), codes, state)`` returns
    ``(forecasts (B, T, H, Q), state)``: Q quantiles of the next H scaled values
    at every step. ``codes`` is (B,) series codes, or (B, 1 + Cc) with the levels of
    the series' static categories after them (0: a level training never saw).
    ``recurrent_steps`` is the number of steps the recurrence is trained over (the
    TBPTT chunk or the lookback), which bounds IndRNN weights. ``static_levels``:
    the levels of each static category, "unknown" included.
    """

    def __init__(
        self,
        config: ModelConfig,
        n_inputs: int,
        n_future: int,
        n_series: int,
        recurrent_steps: int,
        static_levels: tuple[int, ...] = (),
    ):
        super().__init__()
        if config.hidden is None or config.layers is None:
            raise ValueError("ModelConfig sizes must be chosen before building the network")
        self.horizon = config.horizon
        self.quantiles = config.output_quantiles
        hidden, layers = config.hidden, config.layers
        embedding = config.id_embedding
        self.embedding = nn.Embedding(n_series, embedding) if embedding else None
        # A learned vector per level of each static category, read by the encoder at
        # every step and by the head at every future step (as a per-series offset).
        self.static_embeddings = nn.ModuleList(
            nn.Embedding(levels, embedding_size(levels - 1)) for levels in static_levels
        )
        static_width = sum(e.embedding_dim for e in self.static_embeddings)
        encoder_inputs = n_inputs + config.id_embedding + static_width
        self.encoder = CELLS[config.cell](encoder_inputs, config, hidden, layers, recurrent_steps)
        self.backward_encoder = (
            CELLS[config.cell](encoder_inputs, config, hidden, layers, recurrent_steps)
            if config.bidirectional
            else None
        )
        summary = hidden * (2 if config.bidirectional else 1)
        # MQ-RNN's global MLP (state -> one context per future step) and the first layer
        # of its local MLP (context + that step's future inputs) folded into two linear
        # maps added together: the same function class for a linear local first layer,
        # without materialising a (B, T, H, context + Ff) input (5x faster on CPU).
        self.step_size = max(8, hidden // 4)
        self.global_layer = nn.Linear(summary, self.horizon * self.step_size)
        self.future_layer = nn.Linear(n_future, self.step_size, bias=False)
        self.static_layer = (
            nn.Linear(static_width, self.step_size, bias=False) if static_width else None
        )
        self.output_layer = nn.Linear(self.step_size, len(self.quantiles))
        # With season inputs the last future input is the value one season back: the
        # median starts from it, so an untrained network is seasonal naive and training
        # learns the correction.
        self.anchored = config.season_inputs
        self.dropout = nn.Dropout(config.dropout)

    @property
    def summary_width(self) -> int:
        """D of the (B, T, D) summaries ``encode`` gives: what the head reads per step."""
        return self.global_layer.in_features

    def encode(
        self, inputs: torch.Tensor, codes: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Run the encoder: (B, T, F) -> (B, T, D) summaries and the state after T."""
        parts = [inputs]
        if self.embedding is not None:
            series = codes if codes.dim() == 1 else codes[:, 0]
            parts.append(self.embedding(series)[:, None, :].expand(-1, inputs.shape[1], -1))
        if self.static_layer is not None:
            vectors = self._static_vectors(codes)  # (B, Es)
            parts.append(vectors[:, None, :].expand(-1, inputs.shape[1], -1))
        if len(parts) > 1:
            inputs = torch.cat(parts, dim=-1)  # (B, T, F + E + Es)
        summaries, state = self.encoder(inputs, state)
        if self.backward_encoder is not None:
            # Read the window backwards; its last output has seen the whole window.
            backwards, _ = self.backward_encoder(inputs.flip(1))
            last = backwards[:, -1:].expand_as(summaries)
            summaries = torch.cat([summaries, last], dim=-1)  # (B, T, 2D)
        return summaries, state

    def decode(
        self, summaries: torch.Tensor, future: torch.Tensor, codes: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T, D) summaries and (B, T, H, Ff) future inputs -> (B, T, H, Q);
        ``codes`` as for ``forward``, needed when the network has static categories."""
        batch, steps = summaries.shape[:2]
        per_step = self.global_layer(self.dropout(summaries))
        per_step = per_step.view(batch, steps, self.horizon, self.step_size)  # (B, T, H, L)
        if self.static_layer is not None:
            if codes is None:
                raise ValueError("a network with static categories decodes with their codes")
            offset = self.static_layer(self._static_vectors(codes))  # (B, L)
            per_step = per_step + offset[:, None, None, :]
        # The future layer's weight gradient sums over every (origin, step): data_linear
        # computes it several times faster on the CPU than nn.Linear's backward does.
        future_part = data_linear(future, self.future_layer.weight)  # (B, T, H, L)
        hidden = torch.relu(per_step + future_part)
        forecasts = self._ordered(self.output_layer(hidden))  # (B, T, H, Q)
        if self.anchored:
            forecasts = forecasts + future[..., -1:]
        return forecasts

    def forward(
        self,
        inputs: torch.Tensor,
        future: torch.Tensor,
        codes: torch.Tensor,
        state: State | None = None,
        origins: slice | None = None,
    ) -> tuple[torch.Tensor, State]:
        """``origins``: the steps to decode (all by default); ``future`` holds theirs."""
        summaries, state = self.encode(inputs, codes, state)
        if origins is not None:
            summaries = summaries[:, origins]
        return self.decode(summaries, future, codes), state

    def _static_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, 1 + Cc) codes -> (B, Es) the embeddings of the static categories."""
        return torch.cat(
            [table(codes[:, 1 + k]) for k, table in enumerate(self.static_embeddings)], dim=-1
        )

    def _ordered(self, raw: torch.Tensor) -> torch.Tensor:
        if len(self.quantiles) == 1:
            return raw
        middle = self.quantiles.index(0.5)
        median = raw[..., middle : middle + 1]
        gaps = nn.functional.softplus(raw)
        below = median - gaps[..., :middle].flip(-1).cumsum(-1).flip(-1)
        above = median + gaps[..., middle + 1 :].cumsum(-1)
        return torch.cat([below, median, above], dim=-1)

    def clip_recurrent_weights_(self) -> None:
        """Keep IndRNN recurrent weights within their bound (no-op for other cells)."""
        for encoder in (self.encoder, self.backward_encoder):
            if isinstance(encoder, IndRNN):
                encoder.clip_recurrent_weights_()
