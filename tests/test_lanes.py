"""Members trained side by side, one a CPU core (lanes.py): the same members as in
turn, how many lanes a run gets, and a failure in one lane stopping the others."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch

from rnncast import ensembles, lanes, train
from rnncast import training as network_training
from rnncast.ensembles import member_training
from rnncast.errors import Interrupted, TrainingDiverged
from rnncast.nn import seeding
from rnncast.scaling import to_model_space
from tests.test_ensembles import settings, tiny
from tests.test_training import seasonal_panel


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two usable cores, and the CLI's passive waiting, which lets a small network
    train on one thread (nn/device.py), whatever machine runs the tests."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(lanes, "usable_cores", lambda: 2)


class Overlap:
    """Wraps training.train to count the trainings running at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: set[str] = set()
        self.events: list[tuple[str, int]] = []  # ("begin" or "end", seed)
        original = network_training.train

        def counted(panel, model, training, **kwargs):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.threads.add(threading.current_thread().name)
                self.events.append(("begin", training.seed))
            try:
                return original(panel, model, training, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1
                    self.events.append(("end", training.seed))

        monkeypatch.setattr(network_training, "train", counted)


def weights(model) -> list[dict[str, torch.Tensor]]:
    return [member.state_dict() for member in model.network.members]


def test_members_and_refits_side_by_side_equal_those_trained_in_turn(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    panel = seasonal_panel(0, n_series=3, length=120)
    overlap = Overlap(monkeypatch)
    beside = train(panel, tiny(), settings(ensemble=3, refit=True))
    assert overlap.most == 2  # two lanes: members, then refits, two at a time
    assert {"rnncast-member-1", "rnncast-member-2", "rnncast-member-3"} <= overlap.threads
    assert [m["seed"] for m in beside.history["members"]] == [3, 4, 5]
    assert all(m["epochs"] == 2 for m in beside.history["members"])
    assert beside.history["refit"]["epochs"] >= 3  # every member was refitted

    monkeypatch.setattr(lanes, "usable_cores", lambda: 1)
    overlap.most = 0
    in_turn = train(panel, tiny(), settings(ensemble=3, refit=True))
    assert overlap.most == 1
    assert beside.history["members"] == [
        {**m, "seconds": beside.history["members"][k]["seconds"]}
        for k, m in enumerate(in_turn.history["members"])
    ]
    for index, (ours, theirs) in enumerate(zip(weights(beside), weights(in_turn), strict=True)):
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[name], theirs[name]) for name in ours), index
    assert beside.combination == in_turn.combination


def test_a_member_side_by_side_equals_the_member_trained_alone(two_cores: None) -> None:
    panel = seasonal_panel(2, n_series=3, length=120)
    model = train(panel, tiny(), settings(ensemble=2))
    space = to_model_space(panel, model.config.transform)
    for index, member in enumerate(model.network.members):
        alone = network_training.train(
            space, tiny(), replace(member_training(model.training, index), max_time=None)
        )
        theirs, ours = alone.network.state_dict(), member.state_dict()
        assert all(torch.equal(theirs[name], ours[name]) for name in theirs), index
    # Drawing the members' weights from torch's generator did not move the caller's.
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    train(panel, tiny(), settings(ensemble=2))
    assert torch.equal(torch.rand(3), expected)


def test_a_member_that_fails_stops_the_one_beside_it_and_its_error_is_raised(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[str] = []
    stopped = threading.Event()

    def fake_train(panel, model, training, **options):
        if training.seed == 4:  # the second member
            raise TrainingDiverged("the training loss became nan in epoch 1")
        # The first trains until it is told to stop (at most 30 s, not forever).
        while not stopped.wait(0.01):
            reason = options["should_stop"]()
            if reason is not None:
                told.append(reason)
                raise Interrupted(f"training stopped by {reason}", polite=True)
        raise AssertionError("the first member was never told to stop")

    monkeypatch.setattr(network_training, "train", fake_train)
    threading.Timer(30.0, stopped.set).start()
    with pytest.raises(TrainingDiverged, match="became nan"):
        train(seasonal_panel(0, n_series=3, length=120), tiny(), settings(ensemble=3))
    stopped.set()
    assert told == [lanes.SIBLING_FAILED]


def test_jobs_run_at_once_up_to_the_lanes_and_come_back_by_index() -> None:
    arrived = [threading.Event() for _ in range(2)]
    asked: list[int] = []

    def next_job(index: int, elapsed: float):
        asked.append(index)
        assert elapsed >= 0.0
        if index == 3:
            return None

        def job(check):
            assert check() is None
            if index < 2:
                # Each of the first two waits for the other: only side by side do both end.
                arrived[index].set()
                assert arrived[1 - index].wait(10.0), "the jobs did not run at once"
            return index * 10

        return job

    outcomes = lanes.run(next_job, 2)
    assert outcomes == {0: 0, 1: 10, 2: 20}
    assert asked == [0, 1, 2, 3]


def test_the_lanes_a_run_gets(two_cores: None, monkeypatch: pytest.MonkeyPatch) -> None:
    small = replace(tiny(), hidden=8)
    sized = settings(batch_size=8)
    assert lanes.count(small, sized, members=3) == 2
    assert lanes.count(small, sized, members=1) == 1
    assert lanes.count(replace(small, dropout=0.1), sized, members=3) == 1
    assert lanes.count(small, replace(sized, threads=1), members=3) == 1
    # A network whose steps are large enough to share among threads trains on all.
    assert lanes.count(replace(small, hidden=512), replace(sized, batch_size=64), 3) == 1
    monkeypatch.setattr(lanes, "usable_cores", lambda: 8)
    assert lanes.count(small, sized, members=5) == 5
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert lanes.count(small, sized, members=5) == 1  # torch's own threads (Python callers)


def test_one_stop_check_of_several() -> None:
    check = lanes.stopping(lambda: None, None, lambda: "SIGTERM", lambda: "other")
    assert check() == "SIGTERM"
    assert lanes.stopping(lambda: None, None)() is None


def test_the_error_raised_is_the_first_failure_then_the_first_stop() -> None:
    polite = Interrupted("stopped by SIGTERM", polite=True)
    failure = TrainingDiverged("nan")
    assert lanes.first_error({0: polite, 1: failure, 2: "member"}) is failure
    assert lanes.first_error({0: "member", 1: polite}) is polite
    assert lanes.first_error({0: "member"}) is None


def test_a_model_config_with_dropout_trains_its_members_in_turn(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlap = Overlap(monkeypatch)
    panel = seasonal_panel(0, n_series=3, length=120)
    model = train(panel, replace(tiny(), layers=2, dropout=0.2), settings(ensemble=2))
    assert model.config.members == 2
    assert overlap.most == 1


def test_lanes_fit_their_members_in_half_the_memory_free(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lanes.lanes_that_fit(100, free=400) == 2
    assert lanes.lanes_that_fit(100, free=399) == 1
    assert lanes.lanes_that_fit(100, free=100) == 1  # one at least, in turn
    assert lanes.lanes_that_fit(100, free=None) == 1
    small, sized = tiny(), settings(batch_size=8, chunk_len=24)
    # 1,000 rows of 16 columns of float32, and 8 x 24 origins of H x (8 + 3) floats
    # 32 times over.
    step = 8 * 24 * small.horizon * (8 + 3) * 4 * 32
    assert lanes.member_bytes(small, sized, 1_000, 0) == 64_000 + step
    assert lanes.member_bytes(small, sized, 1_000, 4) == 80_000 + step  # 20 columns
    panel = seasonal_panel(0, n_series=3, length=120)
    assert lanes.count(small, sized, members=3, panel=panel) == 2
    each = lanes.member_bytes(small, sized, 3 * 120 + 3 * small.horizon, 0)
    monkeypatch.setattr(lanes, "available_memory", lambda: 4 * each)
    assert lanes.count(small, sized, members=3, panel=panel) == 2
    monkeypatch.setattr(lanes, "available_memory", lambda: 4 * each - 1)
    assert lanes.count(small, sized, members=3, panel=panel) == 1


def test_a_job_that_cannot_be_told_yet_waits_for_one_to_end() -> None:
    ended: list[int] = []
    asked: list[tuple[int, int]] = []
    told_later = threading.Event()

    def next_job(index: int, elapsed: float):
        asked.append((index, len(ended)))
        if index == 3:
            return None
        if index and not ended:
            told_later.set()
            return lanes.LATER

        def job(check):
            if index == 0:  # job 0 runs until job 1 has been put off
                assert told_later.wait(10.0)
            ended.append(index)
            return index

        return job

    assert lanes.run(next_job, 2) == {0: 0, 1: 1, 2: 2}
    # Job 1 was asked for while job 0 ran, and again once it had ended.
    assert asked[:3] == [(0, 0), (1, 0), (1, 1)]
    assert lanes.run(lambda index, elapsed: lanes.LATER, 2) == {}  # nothing to wait for


def test_by_default_the_first_member_trains_alone_and_more_begin_side_by_side(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlap = Overlap(monkeypatch)
    panel = seasonal_panel(0, n_series=3, length=120)
    model = train(panel, tiny(), settings(max_time=60.0))
    # The first member (seed 3) showed what a member costs before any other began.
    assert overlap.events[:2] == [("begin", 3), ("end", 3)]
    assert model.config.members + len(model.history.get("left_out", [])) >= 3
    assert overlap.most == 2


def test_a_training_that_ends_while_another_draws_its_weights_leaves_them_alone(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One training's end puts torch's generator back as it found it; landing between
    another's seeding and its draws, it gave that one the wrong weights (a CI run)."""
    panel = to_model_space(seasonal_panel(4, n_series=3, length=120), "none")
    first, second = settings(seed=4), settings(seed=5)
    alone = network_training.train(panel, tiny(), second).network.state_dict()

    first_in_epoch, second_seeded, first_ended = (threading.Event() for _ in range(3))
    original = network_training.build_network

    def build(model, shape):
        # The second training, seeded, gives the first a second to end before it draws.
        if seeding._GENERATOR.locked() and threading.current_thread().name == "second":
            second_seeded.set()
            first_ended.wait(timeout=1.0)
        return original(model, shape)

    monkeypatch.setattr(network_training, "build_network", build)

    def train_first() -> None:
        def at_epoch_end(report) -> None:
            first_in_epoch.set()
            second_seeded.wait(timeout=30)

        network_training.train(panel, tiny(), first, on_epoch=at_epoch_end)
        first_ended.set()

    outcome: dict[str, dict] = {}

    def train_second() -> None:
        outcome["weights"] = network_training.train(panel, tiny(), second).network.state_dict()

    threads = [threading.Thread(target=train_first, name="first"),
               threading.Thread(target=train_second, name="second")]  # fmt: skip
    threads[0].start()
    assert first_in_epoch.wait(timeout=30)
    threads[1].start()
    for thread in threads:
        thread.join(timeout=60)
    assert second_seeded.is_set() and first_ended.is_set()
    beside = outcome["weights"]
    assert all(torch.equal(alone[name], beside[name]) for name in alone)


def test_the_next_member_trains_beside_the_others_else_alone_while_one_fits() -> None:
    # Budget 100 s, refits a tenth more: a member on a lane costs 40 s, alone 20 s.
    assert ensembles.next_member_way(40.0, [40.0], [20.0], 100.0, 0.1) == "beside"
    assert ensembles.next_member_way(55.0, [40.0], [20.0], 100.0, 0.1) == "alone"
    assert ensembles.next_member_way(75.0, [40.0], [20.0], 100.0, 0.1) is None
    assert ensembles.next_member_way(55.0, [40.0], [], 100.0, 0.1) is None  # none alone yet


def test_a_member_that_trains_alone_has_every_core_and_no_member_beside_it(
    two_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    overlap = Overlap(monkeypatch)
    cores: dict[int, int | None] = {}
    counted = network_training.train

    def recorded(panel, model, training, **kwargs):
        cores[training.seed] = kwargs.get("cores")
        return counted(panel, model, training, **kwargs)

    monkeypatch.setattr(network_training, "train", recorded)
    ways = iter(["alone", "beside", "beside", None])
    monkeypatch.setattr(ensembles, "next_member_way", lambda *args: next(ways))
    monkeypatch.setattr(ensembles, "DEFAULT_MEMBERS", 4)
    panel = seasonal_panel(0, n_series=3, length=120)
    model = train(panel, tiny(), settings(max_time=60.0))
    assert model.config.members + len(model.history.get("left_out", [])) == 4
    assert cores == {3: None, 4: None, 5: 1, 6: 1}  # the first two alone, then one a core
    # The second member ran with none beside it; the third and fourth side by side.
    assert overlap.events[:4] == [("begin", 3), ("end", 3), ("begin", 4), ("end", 4)]
    assert overlap.most == 2
