"""The weights kept from epoch to epoch, their averages and their checkpoint form."""

from __future__ import annotations

import torch

from rnncast.snapshots import AVERAGED_EPOCHS, Snapshots, average


def at(value: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(value)
        layer.bias.fill_(-value)
    return layer


def test_snapshots_keep_the_best_the_last_epochs_and_those_up_to_the_best() -> None:
    kept = Snapshots(at(0.0))
    improved = {1: True, 2: True, 3: False, 4: True, 5: False, 6: False, 7: False, 8: False}
    for epoch, better in improved.items():
        kept.record(at(float(epoch)), better)
    assert float(kept.best["weight"][0, 0]) == 4.0
    assert [float(s["weight"][0, 0]) for s in kept.up_to_best] == [1.0, 2.0, 3.0, 4.0]
    last = list(range(9 - AVERAGED_EPOCHS, 9))
    assert [float(s["weight"][0, 0]) for s in kept.recent] == last
    restored = Snapshots(at(99.0))
    restored.restore(kept.to_tensors())
    pairs = [(restored.best, kept.best)]
    pairs += list(zip(restored.recent, kept.recent, strict=True))
    pairs += list(zip(restored.up_to_best, kept.up_to_best, strict=True))
    for mine, theirs in pairs:
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[name], theirs[name]) for name in mine)


def test_the_average_is_the_mean_of_each_weight() -> None:
    states = [at(1.0).state_dict(), at(2.0).state_dict(), at(6.0).state_dict()]
    mean = average(states)
    assert torch.equal(mean["weight"], torch.full((1, 2), 3.0))
    assert torch.equal(mean["bias"], torch.full((1,), -3.0))
