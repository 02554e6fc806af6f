"""Benchmark: would forecasting without torch pay? A 2-layer LSTM of 64 over M4 Hourly's
shapes (414 series x 960 steps, 12 inputs), in numpy one step at a time against
torch's nn.LSTM, the same weights, in one process; median of ``--repeats`` each.

A forecast process that never imports torch saves its import (1.4 to 2.2 s here), so
numpy would pay only if its LSTM took less than the import more than torch's does.
Results go to ``bench/results/numpy_lstm.json`` (replaced).

Usage: python bench/numpy_lstm.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from results_file import machine_info, write_json_atomically

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "numpy_lstm.json"
SERIES, STEPS, INPUTS, HIDDEN = 414, 960, 12, 64


def numpy_layer(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray):
    """(B, T, F) -> (B, T, D): torch's gate order i, f, g, o; inputs projected at once."""
    batch, steps, _ = x.shape
    hidden = w_hh.shape[1]
    projected = (x.reshape(batch * steps, -1) @ w_ih.T + bias).reshape(batch, steps, -1)
    projected = np.ascontiguousarray(projected.transpose(1, 0, 2))  # (T, B, 4D)
    recurrent = np.ascontiguousarray(w_hh.T)
    h = np.zeros((batch, hidden), np.float32)
    c = np.zeros((batch, hidden), np.float32)
    gates = np.empty((batch, 4 * hidden), np.float32)
    out = np.empty((steps, batch, hidden), np.float32)
    for step in range(steps):
        np.matmul(h, recurrent, out=gates)
        gates += projected[step]
        squashed = 1.0 / (1.0 + np.exp(-gates))
        cell = np.tanh(gates[:, 2 * hidden : 3 * hidden])
        c = squashed[:, hidden : 2 * hidden] * c + squashed[:, :hidden] * cell
        h = squashed[:, 3 * hidden :] * np.tanh(c)
        out[step] = h
    return out.transpose(1, 0, 2)


def child(repeats: int) -> dict:
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(SERIES, STEPS, INPUTS)).astype(np.float32)
    lstm = torch.nn.LSTM(INPUTS, HIDDEN, 2, batch_first=True).eval()
    weights = {name: p.detach().numpy() for name, p in lstm.named_parameters()}
    layers = [(weights[f"weight_ih_l{k}"], weights[f"weight_hh_l{k}"],
               weights[f"bias_ih_l{k}"] + weights[f"bias_hh_l{k}"]) for k in range(2)]  # fmt: skip

    def run_numpy():
        h = x
        for layer in layers:
            h = numpy_layer(h, *layer)
        return h

    def run_torch():
        with torch.no_grad():
            return lstm(torch.from_numpy(x))[0].numpy()

    timings = {}
    for name, step in (("numpy", run_numpy), ("torch", run_torch)):
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            result = step()
            times.append(time.perf_counter() - began)
        timings[name] = {"median_s": round(statistics.median(times), 3),
                         "raw_s": [round(t, 3) for t in times], "out": result}  # fmt: skip
    difference = float(np.abs(timings["numpy"].pop("out") - timings["torch"].pop("out")).max())
    return {"timings": timings, "max_abs_difference": difference,
            "numpy_over_torch": round(timings["numpy"]["median_s"]
                                      / timings["torch"]["median_s"], 2),
            "torch_threads": torch.get_num_threads()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = child(args.repeats)
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    result["torch_import_s"] = round(time.perf_counter() - began, 3)
    document = {
        "benchmark": "a 2-layer LSTM of 64 over 414 x 960 steps: numpy step by step vs torch",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "load_average": os.getloadavg(),
        **result,
        "machine": machine_info(("numpy", "torch")),
    }
    write_json_atomically(RESULTS_PATH, document)
    print(result)


if __name__ == "__main__":
    main()
