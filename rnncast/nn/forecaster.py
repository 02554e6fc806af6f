"""The forecaster network: a recurrent encoder and a multi-horizon quantile head.

At every step t the encoder's state summarises the history up to t, and the
head turns it into forecasts of the next H steps (forking sequences, MQ-RNN,
Wen et al. 2017, arXiv:1711.11053): a global layer maps the state to one
context per future step plus a shared one, and a small local network, shared by
all future steps, reads each context with that step's known future inputs.

Quantiles never cross: the head predicts the median and positive gaps to the
neighbouring quantiles (softplus), summed outwards.
"""

from __future__ import annotations

import torch
from torch import nn

from rnncast.config import ModelConfig
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

    ``forward(inputs (B, T, F), future (B, T, H, Ff), codes (B,), state)`` returns
    ``(forecasts (B, T, H, Q), state)``: Q quantiles of the next H scaled values
    at every step. ``recurrent_steps`` is the number of steps the recurrence is
    trained over (the TBPTT chunk or the lookback), which bounds IndRNN weights.
    """

    def __init__(
        self,
        config: ModelConfig,
        n_inputs: int,
        n_future: int,
        n_series: int,
        recurrent_steps: int,
    ):
        super().__init__()
        if config.hidden is None or config.layers is None:
            raise ValueError("ModelConfig sizes must be chosen before building the network")
        self.horizon = config.horizon
        self.quantiles = config.output_quantiles
        hidden, layers = config.hidden, config.layers
        embedding = config.id_embedding
        self.embedding = nn.Embedding(n_series, embedding) if embedding else None
        encoder_inputs = n_inputs + config.id_embedding
        self.encoder = CELLS[config.cell](encoder_inputs, config, hidden, layers, recurrent_steps)
        self.backward_encoder = (
            CELLS[config.cell](encoder_inputs, config, hidden, layers, recurrent_steps)
            if config.bidirectional
            else None
        )
        summary = hidden * (2 if config.bidirectional else 1)
        self.context_size = max(8, hidden // 4)
        self.global_layer = nn.Linear(summary, (self.horizon + 1) * self.context_size)
        local_hidden = max(16, hidden // 2)
        self.local_layer = nn.Sequential(
            nn.Linear(2 * self.context_size + n_future, local_hidden),
            nn.ReLU(),
            nn.Linear(local_hidden, len(self.quantiles)),
        )
        self.dropout = nn.Dropout(config.dropout)

    def encode(
        self, inputs: torch.Tensor, codes: torch.Tensor, state: State | None = None
    ) -> tuple[torch.Tensor, State]:
        """Run the encoder: (B, T, F) -> (B, T, D) summaries and the state after T."""
        if self.embedding is not None:
            vectors = self.embedding(codes)[:, None, :].expand(-1, inputs.shape[1], -1)
            inputs = torch.cat([inputs, vectors], dim=-1)  # (B, T, F + E)
        summaries, state = self.encoder(inputs, state)
        if self.backward_encoder is not None:
            # Read the window backwards; its last output has seen the whole window.
            backwards, _ = self.backward_encoder(inputs.flip(1))
            last = backwards[:, -1:].expand_as(summaries)
            summaries = torch.cat([summaries, last], dim=-1)  # (B, T, 2D)
        return summaries, state

    def decode(self, summaries: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """(B, T, D) summaries and (B, T, H, Ff) future inputs -> (B, T, H, Q)."""
        batch, steps = summaries.shape[:2]
        contexts = self.global_layer(self.dropout(summaries))
        contexts = torch.relu(contexts).view(batch, steps, self.horizon + 1, self.context_size)
        per_step, shared = contexts[:, :, 1:], contexts[:, :, :1].expand(-1, -1, self.horizon, -1)
        raw = self.local_layer(torch.cat([per_step, shared, future], dim=-1))  # (B, T, H, Q)
        return self._ordered(raw)

    def forward(
        self,
        inputs: torch.Tensor,
        future: torch.Tensor,
        codes: torch.Tensor,
        state: State | None = None,
    ) -> tuple[torch.Tensor, State]:
        summaries, state = self.encode(inputs, codes, state)
        return self.decode(summaries, future), state

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
