"""The plateau schedule halves the learning rate when validation stalls, read through
the median of the last three epochs (optimization.step_schedule), not when one epoch
is lucky or noisy. The validation losses are scripted; the network and its data are
real."""

from __future__ import annotations

import itertools

import pytest

from rnncast import train
from rnncast.loop import Loop
from tests.test_training import quick, seasonal_panel, tiny

LR = 0.01


def rates_over(losses: list[float], monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The learning rate after each epoch of a training whose validation losses are
    ``losses``, one an epoch."""
    # After the epochs, the averages of their weights are validated too: they score
    # worse than every epoch and are not kept.
    scripted = itertools.chain(losses, itertools.repeat(10.0))
    monkeypatch.setattr(Loop, "_validate", lambda self: next(scripted))
    # A patience of 9 lets the rate halve after 4 epochs that do not beat the best.
    model = train(
        seasonal_panel(0, n_series=2, length=120),
        tiny("gru"),
        quick(max_epochs=len(losses), patience=9, lr=LR, schedule="plateau"),
    )
    return [epoch["lr"] for epoch in model.history["epochs"]]


def test_one_lucky_epoch_does_not_halve_the_rate_while_the_loss_falls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Epoch 3 is lucky; the epochs after it fall steadily but stay above it, as on
    # M4 Hourly, where such a run halved the rate by epoch 16 and ended worse.
    losses = [1.0, 0.9, 0.5, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55]
    assert rates_over(losses, monkeypatch) == [LR] * len(losses)


def test_a_real_stall_still_halves_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = [1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    # The medians reach 0.8 at epoch 4; four epochs that do not beat it halve the rate
    # at epoch 8.
    assert rates_over(losses, monkeypatch) == [LR] * 7 + [LR / 2] * 3
