"""Training batches shared out among threads (batch_shares.py): how many shares, the
gradient they hand the loop, and a training in shares that takes the steps of the
whole batch."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from rnncast import batch_shares
from rnncast import training as network_training
from rnncast.batch_shares import (
    BatchShares,
    share_count,
    share_slices,
    summed,
    training_shares,
    usable_cores,
    with_gradients,
)
from rnncast.config import ModelConfig, TrainConfig
from tests.test_ensembles import settings
from tests.test_training import seasonal_panel


@pytest.mark.parametrize(("rows", "count"), [(10, 3), (2, 4), (64, 2), (1, 1), (7, 7)])
def test_shares_cover_the_rows_once_and_differ_by_at_most_one(rows: int, count: int) -> None:
    slices = share_slices(rows, count)
    assert len(slices) == min(rows, count)
    covered = np.concatenate([np.arange(rows)[s] for s in slices])
    assert covered.tolist() == list(range(rows))
    sizes = [s.stop - s.start for s in slices]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_a_batch_goes_in_shares_only_where_each_keeps_enough_work() -> None:
    # M4 Hourly's network: batch 64, chunk 96, LSTM 2 x 64.
    assert share_count(2, 64, 96, 64, 2) == 2
    assert share_count(8, 64, 96, 64, 2) == 8
    assert share_count(1, 64, 96, 64, 2) == 1  # one core: the whole batch
    # A batch of 8 series of 48 steps at hidden 32 ran slower in two threads.
    assert share_count(2, 8, 48, 32, 1) == 1
    assert share_count(16, 3, 500, 64, 2) == 3  # never more shares than rows
    assert usable_cores() >= 1
    lone = ModelConfig(horizon=48, hidden=64, layers=2)
    chosen = TrainConfig(chunk_len=96, batch_size=64)
    assert training_shares(lone, chosen, threads=1, cores=2, distributed_run=False) == 2
    assert training_shares(lone, chosen, threads=None, cores=2, distributed_run=False) == 1
    assert training_shares(lone, chosen, threads=1, cores=2, distributed_run=True) == 1
    dropout = replace(lone, dropout=0.1)
    assert training_shares(dropout, chosen, threads=1, cores=2, distributed_run=False) == 1


def test_the_gradients_given_reach_the_parameters_scaled_as_the_loss() -> None:
    weight = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    bias = torch.nn.Parameter(torch.tensor(0.5))
    unused = torch.nn.Parameter(torch.tensor(3.0))
    loss = with_gradients(torch.tensor(6.0), [weight, bias, unused],
                          [torch.tensor([4.0, -2.0]), torch.tensor(8.0), None])  # fmt: skip
    assert loss.item() == 6.0 and loss.requires_grad
    (loss / 4).backward()
    assert weight.grad.tolist() == [1.0, -0.5]
    assert bias.grad.item() == 2.0
    assert unused.grad is None


def test_shares_summed_equal_the_whole_batch_gradient() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x, y = torch.randn(10, 3), torch.randn(10, 2)
    parameters = list(layer.parameters())
    whole = torch.autograd.grad((layer(x) - y).square().sum(), parameters)
    parts = [torch.autograd.grad((layer(x[s]) - y[s]).square().sum(), parameters)
             for s in share_slices(10, 3)]  # fmt: skip
    for ours, theirs in zip(summed(parts), whole, strict=True):
        torch.testing.assert_close(ours, theirs)
    assert summed([[None, torch.ones(1)], [None, torch.ones(1)]])[0] is None


def test_every_share_ends_before_the_first_error_is_raised() -> None:
    finished = threading.Event()

    def work(index: int) -> int:
        if index == 0:
            raise ValueError("share 0 failed")
        time.sleep(0.2)
        finished.set()
        return index

    shares = BatchShares(2)
    try:
        assert shares.map(lambda index: index * 10, 2) == [0, 10]
        with pytest.raises(ValueError, match="share 0 failed"):
            shares.map(work, 2)
        assert finished.is_set()  # share 1 had ended when the error came back
    finally:
        shares.close()


@pytest.fixture
def small_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's passive waiting (a small network then trains on one thread), and
    shares for any work, so that a tiny network goes in shares."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(batch_shares, "_SHARE_WORK", 1)


@pytest.mark.parametrize("strategy", ["tbptt", "window"])
def test_a_training_in_shares_takes_the_steps_of_the_whole_batch(
    small_shares: None, strategy: str
) -> None:
    panel = seasonal_panel(4, n_series=5, length=120)
    model = ModelConfig(horizon=12, cell="lstm", hidden=8, layers=2)
    training = replace(settings(max_epochs=3, strategy=strategy, val_size=12),
                       batch_size=5 if strategy == "tbptt" else 64)  # fmt: skip
    whole = network_training.train(panel, model, training, cores=1)
    shared = network_training.train(panel, model, training, cores=3)
    assert whole.history["shares"] == 1 and shared.history["shares"] == 3
    for ours, theirs in zip(shared.history["epochs"], whole.history["epochs"], strict=True):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-5)
    assert shared.history["best_epoch"] == whole.history["best_epoch"]
    theirs = whole.network.state_dict()
    for name, value in shared.network.state_dict().items():
        torch.testing.assert_close(value, theirs[name], rtol=1e-4, atol=1e-5)
    # The same shares again: the same sums in the same order, the same weights.
    again = network_training.train(panel, model, training, cores=3).network.state_dict()
    assert all(torch.equal(again[name], value)
               for name, value in shared.network.state_dict().items())  # fmt: skip


def test_dropout_and_torchs_own_threads_keep_the_whole_batch(
    small_shares: None, monkeypatch
) -> None:
    panel = seasonal_panel(4, n_series=4, length=80)
    model = ModelConfig(horizon=12, cell="gru", hidden=8, layers=2, dropout=0.1)
    assert network_training.train(panel, model, settings(), cores=2).history["shares"] == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's thread count: torch's threads
    model = replace(model, dropout=0.0)
    assert network_training.train(panel, model, settings(), cores=2).history["shares"] == 1
