"""Benchmark IndRNN's two ways through time: the loop (CPU) and the parallel scans
(``rnncast/nn/scan.py``, off the CPU), against nn.GRU (cuDNN on CUDA).

For each chunk length T (batch 64, hidden 64, one layer, forward + backward of the
recurrence over a precomputed W x + b): the median time of ``--repeats`` runs after
one warm-up, and the operations each way dispatches (torch.profiler's ``aten::``
calls that compute, views and allocations left out), which is what a GPU launches
and a Python-bound loop pays per step. On CUDA the times are synchronised; on the
CPU the scan is expected to lose (O(T log T) work), and is measured to say by how
much.

Results go to ``bench/results/indrnn_scan.json`` under the device's name.

Usage: python bench/indrnn_scan.py [--steps 96,336] [--repeats 9] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from results_file import machine_info, write_json_atomically

from rnncast.nn.indrnn import _IndRNNScan

RESULTS_PATH = Path(__file__).resolve().parent / "results" / "indrnn_scan.json"
BATCH, HIDDEN = 64, 64
# Dispatches that compute nothing: views, allocations, dtype no-ops.
_NOT_WORK = {"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::as_strided",
             "aten::slice", "aten::select", "aten::unbind", "aten::view", "aten::expand",
             "aten::to", "aten::_to_copy", "aten::detach", "aten::resolve_conj",
             "aten::resolve_neg", "aten::alias", "aten::result_type"}  # fmt: skip


def _recurrence(parallel: bool, steps: int, device: torch.device) -> Callable[[], None]:
    generator = torch.Generator().manual_seed(steps)
    pre = torch.randn(steps, BATCH, HIDDEN, generator=generator).to(device)
    u = (torch.rand(HIDDEN, generator=generator) * 2 - 1).to(device).requires_grad_()
    h0 = torch.rand(BATCH, HIDDEN, generator=generator).to(device)

    def step() -> None:
        source = pre.clone().requires_grad_()
        out = _IndRNNScan.apply(source * 1.0, u, h0, parallel)
        out.sum().backward()

    return step


def _gru(steps: int, device: torch.device) -> Callable[[], None]:
    torch.manual_seed(steps)
    gru = torch.nn.GRU(HIDDEN, HIDDEN).to(device)
    x = torch.randn(steps, BATCH, HIDDEN, device=device)

    def step() -> None:
        out, _ = gru(x)
        out.sum().backward()

    return step


def _median_ms(step: Callable[[], None], repeats: int, device: torch.device) -> float:
    step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 3)


def _operations(step: Callable[[], None]) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as recorded:
        step()
    return sum(event.count for event in recorded.key_averages()
               if event.key.startswith("aten::") and event.key not in _NOT_WORK)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="96,336")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    arguments = parser.parse_args()
    device = torch.device(arguments.device)
    rows = []
    for steps in (int(text) for text in arguments.steps.split(",")):
        row: dict[str, object] = {"steps": steps, "batch": BATCH, "hidden": HIDDEN}
        for name, step in (("loop", _recurrence(False, steps, device)),
                           ("scan", _recurrence(True, steps, device)),
                           ("gru", _gru(steps, device))):  # fmt: skip
            row[f"{name}_ms"] = _median_ms(step, arguments.repeats, device)
            row[f"{name}_operations"] = _operations(step)
        row["scan_over_loop"] = round(row["scan_ms"] / row["loop_ms"], 3)
        row["scan_over_gru"] = round(row["scan_ms"] / row["gru_ms"], 3)
        rows.append(row)
        print(json.dumps(row))
    document = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.exists() else {}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    document[name] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(("torch",)),
        "threads": torch.get_num_threads(),
        "repeats": arguments.repeats,
        "rows": rows,
    }
    write_json_atomically(RESULTS_PATH, document)


if __name__ == "__main__":
    main()
