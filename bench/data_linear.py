"""Benchmark: the head's future layer, its weight gradient taken as nn.Linear's backward
takes it against rnncast.nn.data_linear, at M4 Hourly's training shapes.

* ``product``: the weight gradient alone, ``grad.T @ inputs`` (nn.Linear's order) against
  ``(inputs.T @ grad).T`` (data_linear's, the wider operand on the right), over the
  B x T x H rows of one TBPTT step;
* ``step``: one whole training step of rnncast's Forecaster (LSTM 2 x 64, 64 series x 96
  steps, H 48, three quantiles, the pinball loss, forward and backward), its future
  layer through data_linear against through torch's own linear, alternated in one
  process so both see the same machine;
* ``epochs``: rnncast's training loop on M4 Hourly from ``../shared/data`` (the network
  above, chunks of 96, validation included), two epochs each way, alternated
  ``--pairs`` times; the figure is each run's seconds for its two epochs.

torch.set_num_threads(1), as rnncast trains a network of this size on this machine;
median of ``--repeats`` timings each (after two not timed). Results go to
``bench/results/data_linear.json`` (replaced).

Usage: python bench/data_linear.py [--repeats 15] [--pairs 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from results_file import machine_info, write_json_atomically

from rnncast.config import ModelConfig
from rnncast.nn import forecaster as forecaster_module
from rnncast.nn.data_linear import data_linear
from rnncast.nn.forecaster import Forecaster

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "data_linear.json"
M4_HOURLY = Path(__file__).resolve().parents[2] / "shared" / "data" / "m4_hourly_train.parquet"
BATCH, STEPS, HORIZON, INPUTS, FUTURE = 64, 96, 48, 12, 10


def median_ms(action, repeats: int) -> float:
    times = []
    for index in range(repeats + 2):
        began = time.perf_counter()
        action()
        if index >= 2:
            times.append(time.perf_counter() - began)
    return round(statistics.median(times) * 1000, 2)


def products(repeats: int, step_size: int) -> dict[str, float]:
    rows = BATCH * STEPS * HORIZON
    inputs = torch.randn(rows, FUTURE)
    grads = torch.randn(rows, step_size)
    return {
        "torch_order_ms": median_ms(lambda: grads.T @ inputs, repeats),
        "data_linear_order_ms": median_ms(lambda: (inputs.T @ grads).T, repeats),
    }


def steps(repeats: int) -> dict[str, Any]:
    config = ModelConfig(horizon=HORIZON, hidden=64, layers=2)
    torch.manual_seed(0)
    network = Forecaster(config, INPUTS, FUTURE, 414, recurrent_steps=STEPS).train()
    inputs = torch.randn(BATCH, STEPS, INPUTS)
    future = torch.randn(BATCH, STEPS, HORIZON, FUTURE)
    targets = torch.randn(BATCH, STEPS, HORIZON, 1)
    codes = torch.zeros(BATCH, dtype=torch.int64)
    levels = torch.tensor(config.output_quantiles)

    def step() -> None:
        network.zero_grad(set_to_none=True)
        forecasts, _ = network(inputs, future, codes)
        errors = targets - forecasts
        torch.maximum(levels * errors, (levels - 1) * errors).mean().backward()

    timings: dict[str, list[float]] = {"data_linear_ms": [], "torch_linear_ms": []}
    for _ in range(max(repeats // 5, 1)):
        for name, linear in (("data_linear_ms", data_linear),
                             ("torch_linear_ms", torch.nn.functional.linear)):  # fmt: skip
            forecaster_module.data_linear = linear
            timings[name].append(median_ms(step, 5))
    forecaster_module.data_linear = data_linear
    medians = {name: round(statistics.median(values), 2) for name, values in timings.items()}
    return {**medians, "raw": timings,
            "ratio": round(medians["data_linear_ms"] / medians["torch_linear_ms"], 3)}  # fmt: skip


def epochs(pairs: int) -> dict[str, Any] | None:
    """Two epochs of rnncast's loop on M4 Hourly each way, alternated; None without the
    data."""
    if not M4_HOURLY.exists():
        return None
    import rnncast
    from rnncast import training
    from rnncast.config import TrainConfig

    panel = rnncast.read_panel(M4_HOURLY)
    model = ModelConfig(horizon=48, hidden=64, layers=2, long_season=168, transform="none",
                        scaler="standard")  # fmt: skip
    settings = TrainConfig(max_epochs=2, patience=5, seed=1, ensemble=1, refit=False,
                           chunk_len=96, batch_size=64, threads=1)  # fmt: skip
    seconds: dict[str, list[float]] = {"data_linear_s": [], "torch_linear_s": []}
    for _ in range(pairs):
        for name, linear in (("data_linear_s", data_linear),
                             ("torch_linear_s", torch.nn.functional.linear)):  # fmt: skip
            forecaster_module.data_linear = linear
            trained = training.train(panel, model, settings)
            seconds[name].append(round(trained.history["epochs"][-1]["seconds"], 2))
    forecaster_module.data_linear = data_linear
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {**medians, "raw": seconds,
            "ratio": round(medians["data_linear_s"] / medians["torch_linear_s"], 3)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    step_size = max(8, 64 // 4)  # as Forecaster chooses it for hidden 64
    result = {
        "benchmark": "the head's future layer: weight gradient orders, and a training step",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "shapes": {
            "batch": BATCH,
            "steps": STEPS,
            "horizon": HORIZON,
            "future_inputs": FUTURE,
            "step_size": step_size,
        },
        "repeats": args.repeats,
        "product": products(args.repeats, step_size),
        "step": steps(args.repeats),
        "epochs": epochs(args.pairs),
        "machine": machine_info(("torch", "numpy")),
    }
    write_json_atomically(RESULTS_PATH, result)
    print(f"weight gradient: {result['product']}")
    step = result["step"]
    print(f"training step: data_linear {step['data_linear_ms']} ms, torch's linear "
          f"{step['torch_linear_ms']} ms (ratio {step['ratio']})")  # fmt: skip
    if result["epochs"] is not None:
        two = result["epochs"]
        print(f"two epochs on M4 Hourly: data_linear {two['data_linear_s']} s, torch's linear "
              f"{two['torch_linear_s']} s (ratio {two['ratio']})")  # fmt: skip
    print(f"wrote {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
