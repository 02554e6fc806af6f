"""Benchmark training throughput: series steps trained per second, per cell, size and strategy.

Throughput is the number of training origins an epoch scores (series x time steps: every
step whose next H values lie in the training part) divided by the epoch's seconds. Cases,
on the M4 Hourly training file from ``../shared/data`` (H = 48, one layer, validation off
so an epoch is training alone):

* ``tbptt/all``: rnncast's TBPTT loop (chunk_len 96, 64 series a batch) on all 414 series;
* ``reference/all``: the same work in a plain-torch loop written here (nn.LSTM, nn.GRU or
  nn.RNN, a head of the same shapes, the same chunks, Adam and gradient clipping), so the
  cost of rnncast's loop shows as rnncast / reference;
* ``tbptt/subset`` and ``window/subset``: both strategies on the same evenly spaced subset
  of the series (window epochs, lookback 240 = 5 H, read 240 steps per origin and take
  minutes on all 414), for the tbptt / window ratio.
* ``chunk/split``: where one TBPTT step's time goes: rnncast's Forecaster on one chunk
  (64 series x 96 steps), the encoder alone against the whole network with its loss.

Cells lstm, gru, rnn and indrnn at hidden 64 and 128. Each case is a fresh Python process
on torch.set_num_threads(2) that trains ``--warmup`` epochs (not timed) and ``--epochs``
timed ones (``--window-epochs`` for the window strategy); the figure is the median timed
epoch. Before measuring, the parent waits for
the 1-minute load average to fall below ``--quiet-load`` (up to ``--max-wait`` seconds) and
records what it saw. Results go to ``bench/results/train_throughput.json``; see
``bench/README.md``.

Usage: python bench/train_throughput.py [--epochs N] [--subset N] [--groups a,b] [--cells a,b]
"""

from __future__ import annotations

# The parent only starts children and collects their JSON lines; torch, numpy and rnncast
# are imported inside the functions children run, so the parent stays small and quick.
import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "train_throughput.json"
DATA_PATH = REPO_ROOT.parent / "shared" / "data" / "m4_hourly_train.parquet"

HORIZON = 48
CHUNK_LEN = 96
LOOKBACK = 5 * HORIZON
BATCH_SIZE = {"tbptt": 64, "window": 256}  # rnncast's defaults for 414 series
THREADS = 2
SEED = 0
CELLS = ("lstm", "gru", "rnn", "indrnn")
REFERENCE_CELLS = ("lstm", "gru", "rnn")  # torch has no IndRNN to write a reference with
GROUPS = ("tbptt/all", "reference/all", "tbptt/subset", "window/subset", "chunk/split")
SPLIT_REPEATS = 20

# Targets on the 2-core reference machine.
TARGET_INDRNN_OVER_GRU = 1.5  # IndRNN time per step at most 1.5 x GRU's
TARGET_TBPTT_OVER_WINDOW = 5.0  # TBPTT throughput at least 5 x the window strategy's

RESULT_PREFIX = "RNNCAST_BENCH_RESULT "


# --------------------------------------------------------------------------- children


def _load_panel(subset: int):
    """The M4 Hourly panel, or ``subset`` evenly spaced series of it (0: all)."""
    import numpy as np

    from rnncast.config import DataConfig
    from rnncast.panel import read_panel

    panel = read_panel(str(DATA_PATH), DataConfig(horizon=HORIZON))
    if 0 < subset < panel.n_series:
        # Evenly spaced by position, so short (700) and long (960) series keep their mix.
        panel = panel.take(np.unique(np.linspace(0, panel.n_series - 1, subset).round()))
    return panel


def _origins_per_epoch(lengths) -> int:
    # With val_size 0, series of length L has origins 0 .. L - 1 - H: L - H of them.
    return int((lengths - HORIZON).clip(min=0).sum())


def child_rnncast(spec: dict[str, Any]) -> dict[str, Any]:
    """Train with rnncast.training.train and report the epochs' seconds."""
    import torch

    torch.set_num_threads(THREADS)
    from rnncast.config import ModelConfig, TrainConfig
    from rnncast.training import train

    panel = _load_panel(spec["subset"])
    strategy = spec["strategy"]
    model = ModelConfig(horizon=HORIZON, cell=spec["cell"], hidden=spec["hidden"], layers=1)
    training = TrainConfig(
        strategy=strategy,
        chunk_len=CHUNK_LEN if strategy == "tbptt" else None,
        lookback=LOOKBACK if strategy == "window" else None,
        batch_size=BATCH_SIZE[strategy],
        max_epochs=spec["warmup"] + spec["epochs"],
        patience=10_000,  # never stop early: every case runs the same number of epochs
        val_size=0,  # no validation pass inside the timed epoch
        test_size=0,  # every step trains, as in the runs recorded before the holdout existed
        seed=SEED,
        device="cpu",
        threads=THREADS,
    )
    trained = train(panel, model, training)
    elapsed = [0.0] + [epoch["seconds"] for epoch in trained.history["epochs"]]
    seconds = [b - a for a, b in itertools.pairwise(elapsed)]
    return {
        "series": panel.n_series,
        "origins_per_epoch": _origins_per_epoch(panel.lengths),
        "warmup_seconds": seconds[: spec["warmup"]],
        "epoch_seconds": seconds[spec["warmup"] :],
        "train_loss": [epoch["train_loss"] for epoch in trained.history["epochs"]],
        "parameters": sum(p.numel() for p in trained.network.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def child_reference(spec: dict[str, Any]) -> dict[str, Any]:
    """The TBPTT epoch in plain torch: the same batches, chunks, network shapes, quantile
    loss, Adam step and gradient clipping as rnncast's loop, none of its bookkeeping.

    Only the data layout is borrowed (rnncast.batches.lay_out/gather_block, the tensors
    rnncast trains on); the network, loss and loop are written out below.
    """
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(THREADS)
    from rnncast.batches import gather_block, iter_chunks, lay_out, n_future_features
    from rnncast.config import DEFAULT_QUANTILES
    from rnncast.scaling import fit_scaler

    panel = _load_panel(spec["subset"])
    season = panel.freq.season_length
    tensors = lay_out(panel, fit_scaler(panel, "standard"), HORIZON, season, torch.device("cpu"))
    n_future = n_future_features(tensors.n_known, season)
    quantiles = torch.tensor(sorted(set(DEFAULT_QUANTILES) | {0.5}))
    hidden = spec["hidden"]
    step_size = max(8, hidden // 4)  # as rnncast.nn.forecaster.Forecaster

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            kind = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[spec["cell"]]
            self.rnn = kind(tensors.n_features, hidden, batch_first=True)
            self.global_layer = nn.Linear(hidden, HORIZON * step_size)
            self.future_layer = nn.Linear(n_future, step_size, bias=False)
            self.output_layer = nn.Linear(step_size, len(quantiles))

        def forward(self, inputs, future, state):
            summaries, state = self.rnn(inputs, state)  # (B, K, D)
            batch, steps = summaries.shape[:2]
            per_step = self.global_layer(summaries).view(batch, steps, HORIZON, step_size)
            raw = self.output_layer(torch.relu(per_step + self.future_layer(future)))
            median = raw[..., 1:2]  # quantiles (0.1, 0.5, 0.9): (B, K, H, 1) each
            gaps = nn.functional.softplus(raw)
            ordered = torch.cat([median - gaps[..., :1], median, median + gaps[..., 2:]], -1)
            return ordered + future[..., -1:], state  # (B, K, H, Q), seasonal-naive anchor

    torch.manual_seed(SEED)
    network = Net()
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    rng = np.random.default_rng(SEED)
    lengths = panel.lengths
    high = lengths - 1 - HORIZON  # last origin scored; the first is 0
    order = np.argsort(lengths, kind="stable")  # similar lengths share a batch
    batches = [order[i : i + BATCH_SIZE["tbptt"]] for i in range(0, len(order), 64)]

    def run_epoch() -> float:
        total, count = torch.zeros(()), 0
        for index in rng.permutation(len(batches)):
            series = batches[index]
            block = gather_block(tensors, series)
            limit = int(high[series].max()) + 1
            inputs = block.inputs(0, limit)  # (B, T, F)
            future = block.future(0, limit)  # (B, T, H, Ff), built once per batch
            targets = block.targets(0, limit).unsqueeze(-1)  # (B, T, H, 1)
            steps = torch.arange(limit)[None, :]
            mask = (steps <= torch.from_numpy(high[series])[:, None]).float()  # (B, T)
            state = None
            for start, stop in iter_chunks(limit, CHUNK_LEN, int(rng.integers(1, CHUNK_LEN + 1))):
                forecasts, state = network(inputs[:, start:stop], future[:, start:stop], state)
                errors = targets[:, start:stop] - forecasts  # (B, K, H, Q)
                pinball = torch.maximum(quantiles * errors, (quantiles - 1) * errors)
                scored = mask[:, start:stop]
                loss_sum = (pinball.mean(dim=(2, 3)) * scored).sum()
                chunk_count = int(scored.sum())
                if chunk_count == 0:
                    continue
                optimizer.zero_grad(set_to_none=True)
                (loss_sum / chunk_count).backward()
                nn.utils.clip_grad_norm_(network.parameters(), 1.0)
                optimizer.step()
                state = (
                    tuple(s.detach() for s in state)
                    if isinstance(state, tuple)
                    else (state.detach())
                )
                total, count = total + loss_sum.detach(), count + chunk_count
        return float(total) / max(count, 1)

    seconds, losses = [], []
    for _ in range(spec["warmup"] + spec["epochs"]):
        began = time.perf_counter()
        losses.append(run_epoch())
        seconds.append(time.perf_counter() - began)
    return {
        "series": panel.n_series,
        "origins_per_epoch": _origins_per_epoch(lengths),
        "warmup_seconds": seconds[: spec["warmup"]],
        "epoch_seconds": seconds[spec["warmup"] :],
        "train_loss": losses,
        "parameters": sum(p.numel() for p in network.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def child_split(spec: dict[str, Any]) -> dict[str, Any]:
    """Where one TBPTT step's time goes: rnncast's Forecaster on one chunk of random data
    shaped as M4 Hourly's (B 64, K 96, F 7, Ff 7, H 48), median milliseconds of
    SPLIT_REPEATS calls (after 3 untimed) of the encoder alone (forward + backward of a sum),
    the whole network with the quantile loss (forward + backward), and clipping + Adam."""
    import torch

    torch.set_num_threads(THREADS)
    from rnncast.config import ModelConfig
    from rnncast.nn.forecaster import Forecaster

    batch, steps, features = BATCH_SIZE["tbptt"], CHUNK_LEN, 7
    config = ModelConfig(horizon=HORIZON, cell=spec["cell"], hidden=spec["hidden"], layers=1)
    torch.manual_seed(SEED)
    network = Forecaster(config, features, features, 414, CHUNK_LEN)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    quantiles = torch.tensor(config.output_quantiles)
    inputs = torch.randn(batch, steps, features)
    future = torch.randn(batch, steps, HORIZON, features)
    targets = torch.randn(batch, steps, HORIZON, 1)
    codes = torch.zeros(batch, dtype=torch.int64)

    def encoder() -> None:
        summaries, _ = network.encode(inputs, codes)  # (B, K, D)
        summaries.sum().backward()

    def whole() -> None:
        forecasts, _ = network(inputs, future, codes)  # (B, K, H, Q)
        errors = targets - forecasts
        torch.maximum(quantiles * errors, (quantiles - 1) * errors).mean().backward()

    def step() -> None:
        torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
        optimizer.step()

    def median_ms(call) -> float:
        times = []
        for repeat in range(3 + SPLIT_REPEATS):
            began = time.perf_counter()
            call()
            if repeat >= 3:
                times.append(1000 * (time.perf_counter() - began))
        return statistics.median(times)

    whole()  # gradients exist, so step() has work from its first call
    result = {
        "encoder_ms": median_ms(encoder),
        "network_and_loss_ms": median_ms(whole),
        "clip_and_adam_ms": median_ms(step),
    }
    result["head_and_loss_share"] = 1 - result["encoder_ms"] / result["network_and_loss_ms"]
    return {"split": result, "torch_threads": torch.get_num_threads()}


def child_main(text: str) -> None:
    spec = json.loads(text)
    group = spec["group"]
    run = {"reference": child_reference, "chunk": child_split}.get(
        group.split("/")[0], child_rnncast
    )
    print(RESULT_PREFIX + json.dumps(run(spec)), flush=True)


# --------------------------------------------------------------------------- parent


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(threshold: float, max_wait_s: float, poll_s: float = 15.0) -> dict[str, Any]:
    """Wait until the 1-minute load average is below ``threshold`` or ``max_wait_s`` passes."""
    began = time.monotonic()
    seen = [load_average()]
    while seen[-1] >= threshold and time.monotonic() - began < max_wait_s:
        time.sleep(poll_s)
        seen.append(load_average())
    waited = time.monotonic() - began
    return {
        "threshold": threshold,
        "waited_s": round(waited, 1),
        "quiet": seen[-1] < threshold,
        "first": seen[0],
        "last": seen[-1],
    }


def case_specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs = []
    for group in args.group_names:
        cells = [c for c in args.cell_names if c in REFERENCE_CELLS or group != "reference/all"]
        for cell in cells:
            for hidden in args.hidden_sizes:
                strategy = group.split("/")[0]
                specs.append(
                    {
                        "name": f"{group}/{cell}/{hidden}",
                        "group": group,
                        "strategy": "window" if strategy == "window" else "tbptt",
                        "loop": {"reference": "reference", "chunk": "none"}.get(
                            strategy, "rnncast"
                        ),
                        "cell": cell,
                        "hidden": hidden,
                        "subset": args.subset if group.endswith("subset") else args.all_series,
                        "warmup": args.warmup,
                        "epochs": args.window_epochs if strategy == "window" else args.epochs,
                    }
                )
    return specs


def run_case(spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    entry: dict[str, Any] = dict(spec)
    entry["load_average_before"] = load_average()
    try:
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        entry.update(status="timeout", note=f"took longer than {timeout_s:g} s (--case-timeout)")
        return entry
    entry["load_average_after"] = load_average()
    lines = [ln for ln in completed.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        entry.update(
            status="failed", note=f"child exited {completed.returncode}: " + " | ".join(tail)
        )
        return entry
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    if "split" in result:
        entry.update(status="ok", **result)
        return entry
    median = statistics.median(result["epoch_seconds"])
    entry.update(
        status="ok",
        series=result["series"],
        origins_per_epoch=result["origins_per_epoch"],
        parameters=result["parameters"],
        torch_threads=result["torch_threads"],
        epoch_seconds={"median": median, "raw": result["epoch_seconds"]},
        warmup_seconds=result["warmup_seconds"],
        throughput=result["origins_per_epoch"] / median,
        train_loss=result["train_loss"],
    )
    return entry


def _ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None) -> float | None:
    """Median epoch seconds of one case over another's, when both ran."""
    if not numerator or not denominator:
        return None
    if numerator["status"] != "ok" or denominator["status"] != "ok":
        return None
    return numerator["epoch_seconds"]["median"] / denominator["epoch_seconds"]["median"]


def derive_ratios(cases: list[dict[str, Any]], hidden_sizes: list[int]) -> dict[str, list]:
    by_name = {case["name"]: case for case in cases}
    indrnn, tbptt_window, loop = [], [], []
    for hidden in hidden_sizes:
        for group in ("tbptt/all", "tbptt/subset", "window/subset"):
            # Same data, so the time ratio is the time-per-step ratio.
            ratio = _ratio(
                by_name.get(f"{group}/indrnn/{hidden}"), by_name.get(f"{group}/gru/{hidden}")
            )
            if ratio is not None:
                indrnn.append(
                    {"group": group, "hidden": hidden, "ratio": ratio,
                     "target": TARGET_INDRNN_OVER_GRU, "met": ratio <= TARGET_INDRNN_OVER_GRU}
                )  # fmt: skip
        # The encoder alone, one chunk: the recurrence without the head that all cells share.
        ind, gru = (
            by_name.get(f"chunk/split/indrnn/{hidden}"),
            by_name.get(f"chunk/split/gru/{hidden}"),
        )
        if ind and gru and ind["status"] == gru["status"] == "ok":
            ratio = ind["split"]["encoder_ms"] / gru["split"]["encoder_ms"]
            indrnn.append(
                {"group": "chunk/split (encoder only)", "hidden": hidden, "ratio": ratio,
                 "target": TARGET_INDRNN_OVER_GRU, "met": ratio <= TARGET_INDRNN_OVER_GRU}
            )  # fmt: skip
        for cell in CELLS:
            # Same subset and origins: window time / tbptt time = tbptt / window throughput.
            ratio = _ratio(
                by_name.get(f"window/subset/{cell}/{hidden}"),
                by_name.get(f"tbptt/subset/{cell}/{hidden}"),
            )
            if ratio is not None:
                tbptt_window.append(
                    {"cell": cell, "hidden": hidden, "ratio": ratio,
                     "target": TARGET_TBPTT_OVER_WINDOW, "met": ratio >= TARGET_TBPTT_OVER_WINDOW}
                )  # fmt: skip
            ratio = _ratio(
                by_name.get(f"tbptt/all/{cell}/{hidden}"),
                by_name.get(f"reference/all/{cell}/{hidden}"),
            )
            if ratio is not None:
                loop.append({"cell": cell, "hidden": hidden, "ratio": ratio})
    return {
        "indrnn_over_gru_time_per_step": indrnn,
        "tbptt_over_window_throughput": tbptt_window,
        "rnncast_over_reference_time": loop,
    }  # fmt: skip


def _describe_split(split: dict[str, float]) -> str:
    return (
        f"one chunk: encoder {split['encoder_ms']:.1f} ms, network + loss "
        f"{split['network_and_loss_ms']:.1f} ms (head + loss {split['head_and_loss_share']:.0%}), "
        f"clip + adam {split['clip_and_adam_ms']:.1f} ms"
    )


def print_report(cases: list[dict[str, Any]], ratios: dict[str, list]) -> None:
    header = f"{'case':<30} {'series':>6} {'origins':>9} {'s/epoch':>8} {'steps/s':>9}  raw s"
    print()
    print(header)
    print("-" * len(header))
    for case in cases:
        if case["status"] != "ok":
            print(f"{case['name']:<30} {case['status']}: {case.get('note', '')}")
            continue
        if "split" in case:
            print(f"{case['name']:<30} {_describe_split(case['split'])}")
            continue
        raw = ", ".join(f"{s:.2f}" for s in case["epoch_seconds"]["raw"])
        print(
            f"{case['name']:<30} {case['series']:>6} {case['origins_per_epoch']:>9,} "
            f"{case['epoch_seconds']['median']:>8.2f} {case['throughput']:>9,.0f}  {raw}"
        )
    print()
    for row in ratios["indrnn_over_gru_time_per_step"]:
        verdict = "met" if row["met"] else "MISSED"
        print(f"indrnn / gru time per step, {row['group']} h{row['hidden']}: "
              f"{row['ratio']:.2f} (target <= {row['target']:g}: {verdict})")  # fmt: skip
    for row in ratios["tbptt_over_window_throughput"]:
        verdict = "met" if row["met"] else "MISSED"
        print(f"tbptt / window throughput, {row['cell']} h{row['hidden']}: "
              f"{row['ratio']:.1f}x (target >= {row['target']:g}x: {verdict})")  # fmt: skip
    for row in ratios["rnncast_over_reference_time"]:
        print(f"rnncast loop / plain torch, {row['cell']} h{row['hidden']}: {row['ratio']:.2f}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per case (5)")
    parser.add_argument(
        "--window-epochs", type=int, default=3, help="timed epochs per window case (3)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first (1)")
    parser.add_argument(
        "--subset", type=int, default=64, help="series in the */subset groups (64; 0: all)"
    )
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"subset of {', '.join(GROUPS)}")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"subset of {', '.join(CELLS)}")
    parser.add_argument("--hidden", default="64,128", help="hidden sizes (64,128)")
    parser.add_argument("--quiet-load", type=float, default=1.5, help="1-min load to wait for")
    parser.add_argument("--max-wait", type=float, default=600, help="seconds to wait (600)")
    parser.add_argument(
        "--case-wait", type=float, default=60, help="seconds to wait before each case (60)"
    )
    parser.add_argument("--case-timeout", type=float, default=1800, help="seconds per case")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="JSON file to write")
    # For trying the script out quickly: the "all" groups on fewer series.
    parser.add_argument("--all-series", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.window_epochs < 1 or args.warmup < 0:
        parser.error("--epochs and --window-epochs must be at least 1, --warmup at least 0")
    args.group_names = [g.strip() for g in args.groups.split(",") if g.strip()]
    args.cell_names = [c.strip() for c in args.cells.split(",") if c.strip()]
    args.hidden_sizes = [int(h) for h in args.hidden.split(",") if h.strip()]
    for kind, names, allowed in (
        ("group", args.group_names, GROUPS),
        ("cell", args.cell_names, CELLS),
    ):
        unknown = [name for name in names if name not in allowed]
        if unknown:
            parser.error(
                f"unknown {kind}(s) {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child)
        return 0
    if not DATA_PATH.exists():
        print(f"skipped: {DATA_PATH} not found (the M4 Hourly training file)")
        return 0
    specs = case_specs(args)
    started_at = dt.datetime.now(dt.UTC)
    load_start = os.getloadavg()
    print(f"waiting for 1-minute load < {args.quiet_load} (up to {args.max_wait:g} s) ...")
    quiet = wait_for_quiet(args.quiet_load, args.max_wait)
    print(f"  load {quiet['last']:.2f} after {quiet['waited_s']:.0f} s", flush=True)
    cases = []
    for number, spec in enumerate(specs, 1):
        spec_quiet = wait_for_quiet(args.quiet_load, args.case_wait if number > 1 else 0)
        print(f"[{number}/{len(specs)}] {spec['name']} (load {spec_quiet['last']:.2f})", end="")
        print("", flush=True)
        cases.append(run_case(spec, args.case_timeout))
        case = cases[-1]
        if case["status"] == "ok" and "split" in case:
            print(f"  {_describe_split(case['split'])}", flush=True)
        elif case["status"] == "ok":
            print(f"  {case['epoch_seconds']['median']:.2f} s/epoch, "
                  f"{case['throughput']:,.0f} steps/s", flush=True)  # fmt: skip
        else:
            print(f"  {case['status']}: {case.get('note')}", flush=True)
    ratios = derive_ratios(cases, args.hidden_sizes)
    subset_ids = next((c.get("series") for c in cases if c["group"].endswith("subset")), None)
    document = {
        "benchmark": "rnncast training throughput: training origins (series x steps) per second",
        "date": started_at.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started_at).total_seconds(), 1),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "statistic": "median of the timed epochs of one fresh process per case; raw alongside",
        "units": {
            "epoch_seconds": "seconds of one training epoch (rnncast: its history; reference: "
            "time.perf_counter around the epoch)",
            "throughput": "origins_per_epoch / median epoch_seconds (series x time steps per s)",
            "origins_per_epoch": "sum over series of (length - H): steps scored in an epoch",
        },
        "settings": {
            "data": str(DATA_PATH.name),
            "horizon": HORIZON,
            "layers": 1,
            "chunk_len": CHUNK_LEN,
            "lookback": LOOKBACK,
            "batch_size": BATCH_SIZE,
            "val_size": 0,
            "optimizer": "adam, lr 3e-3, clip 1.0",
            "threads": THREADS,
            "seed": SEED,
            "warmup_epochs": args.warmup,
            "timed_epochs": {"tbptt": args.epochs, "window": args.window_epochs},
            "split_repeats": SPLIT_REPEATS,
            "subset_series": subset_ids,
            "subset_rule": "series at positions round(linspace(0, 413, N)) of the panel",
            "all_series": args.all_series or "all",
        },
        "machine": machine_info(("rnncast", "torch", "numpy")),
        "load_average": {
            "wait": quiet,
            "start": load_start,
            "end": os.getloadavg(),
            "per_case": "load_average_before / load_average_after in each case",
        },
        "targets": {
            "indrnn_over_gru_time_per_step": f"<= {TARGET_INDRNN_OVER_GRU}",
            "tbptt_over_window_throughput": f">= {TARGET_TBPTT_OVER_WINDOW}",
        },
        "ratios": ratios,
        "cases": cases,
    }
    write_json_atomically(args.output, document)
    print_report(cases, ratios)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
