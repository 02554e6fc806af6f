"""The loss networks train on (loss_function.LossFunction) and the choice among the
weights kept (snapshots.choose_weights), each on its own."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnncast.config import ModelConfig
from rnncast.errors import TrainingDiverged
from rnncast.loss_function import LossFunction
from rnncast.snapshots import Snapshots, choose_weights

CPU = torch.device("cpu")


def scored(loss: LossFunction, forecasts, targets, mask=None, weights=None) -> float:
    """The mean loss per origin of (B, T, H, Q) forecasts."""
    batch, steps = forecasts.shape[:2]
    mask = torch.ones(batch, steps, dtype=torch.bool) if mask is None else mask
    weights = torch.ones(batch) if weights is None else weights
    total, count = loss.score(forecasts, targets, mask, weights)
    return float(total) / int(count)


def test_each_quantile_loss_is_lowest_at_that_quantile_of_the_targets() -> None:
    levels = (0.1, 0.5, 0.9)
    loss = LossFunction(ModelConfig(horizon=1, quantiles=levels), CPU)
    targets = torch.from_numpy(np.random.default_rng(0).gamma(2.0, size=(1, 2001, 1))).float()
    for index, level in enumerate(levels):
        best = float(np.quantile(targets.numpy(), level))

        def at(value: float, index: int = index) -> float:
            forecasts = torch.zeros(1, 2001, 1, len(levels))
            forecasts[..., index] = value
            # Only this quantile's term moves with the value.
            return scored(loss, forecasts, targets)

        assert at(best) < at(best - 0.2) and at(best) < at(best + 0.2)


def test_the_median_loss_is_half_the_absolute_error_and_mae_the_whole() -> None:
    rng = np.random.default_rng(1)
    forecasts = torch.from_numpy(rng.normal(size=(3, 5, 4, 1))).float()
    targets = torch.from_numpy(rng.normal(size=(3, 5, 4))).float()
    absolute = float((targets.unsqueeze(-1) - forecasts).abs().mean())
    median = LossFunction(ModelConfig(horizon=4, quantiles=(0.5,)), CPU)
    mae = LossFunction(ModelConfig(horizon=4, loss="mae"), CPU)
    mse = LossFunction(ModelConfig(horizon=4, loss="mse"), CPU)
    assert scored(median, forecasts, targets) == pytest.approx(absolute / 2, rel=1e-5)
    assert scored(mae, forecasts, targets) == pytest.approx(absolute, rel=1e-5)
    squared = float((targets.unsqueeze(-1) - forecasts).square().mean())
    assert scored(mse, forecasts, targets) == pytest.approx(squared, rel=1e-5)


def test_masked_origins_count_for_nothing_and_weights_scale_their_series() -> None:
    loss = LossFunction(ModelConfig(horizon=2, loss="mae"), CPU)
    forecasts = torch.zeros(2, 3, 2, 1)
    targets = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [100.0, 100.0]],
                            [[3.0, 3.0], [3.0, 3.0], [3.0, 3.0]]])  # fmt: skip
    mask = torch.tensor([[True, True, False], [True, False, False]])
    total, count = loss.score(forecasts, targets, mask, torch.tensor([1.0, 0.5]))
    assert int(count) == 3
    assert float(total) == pytest.approx(1.0 + 2.0 + 0.5 * 3.0)


class Scalar(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.value = torch.nn.Parameter(torch.zeros(()))


def kept_epochs(values: list[float], best: int) -> Snapshots:
    """Snapshots of a network whose one weight was ``values[e]`` after epoch e + 1,
    the best epoch ``best``."""
    network = Scalar()
    kept = Snapshots(network)
    for epoch, value in enumerate(values, start=1):
        network.value.data.fill_(value)
        kept.record(network, improved=epoch <= best)
    return kept


def test_an_average_is_loaded_only_when_it_validates_below_the_best_epoch() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    kept = kept_epochs(values, best=3)  # epochs 1-3 up to the best, 2-6 the last five
    network = Scalar()

    def distance_to(target: float):
        return lambda: abs(network.value.item() - target)

    # The best epoch's weight is 3; the averages are 2 (epochs 1-3) and 4 (2-6).
    chosen = choose_weights(network, kept, distance_to(2.0), best_loss=1.0, best_epoch=3,
                            epoch=6)  # fmt: skip
    assert network.value.item() == pytest.approx(2.0)
    assert chosen is not None and chosen["kept"]
    assert [t["epochs"] for t in chosen["tried"]] == [[1, 3], [2, 6]]
    chosen = choose_weights(network, kept, distance_to(3.0), best_loss=0.0, best_epoch=3,
                            epoch=6)  # fmt: skip
    assert network.value.item() == pytest.approx(3.0)
    assert chosen is not None and not chosen["kept"]


def test_an_average_that_diverges_is_tried_and_never_kept() -> None:
    kept = kept_epochs([1.0, 2.0, 3.0], best=3)
    network = Scalar()

    def diverging() -> float:
        raise TrainingDiverged("the validation loss became nan")

    chosen = choose_weights(network, kept, diverging, best_loss=math.inf, best_epoch=3,
                            epoch=3)  # fmt: skip
    assert network.value.item() == pytest.approx(3.0)
    assert chosen == {"tried": [{"epochs": [1, 3], "val_loss": None}], "kept": False}
