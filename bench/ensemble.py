"""Benchmark ensembles: N members trained in one run against N separate runs, and
what training them as one batched network would cost on this machine.

* ``runs``: for each N of ``--members``, ``rnncast train DATA --ensemble N`` against
  N runs of ``--ensemble 1``
  with the seeds and TBPTT chunks the members get (``ensembles.member_training``),
  every run a CLI process as a user starts it, all with ``--max-epochs E --patience E
  --no-refit`` so each member does the same work in both. The ratio together /
  separate is what the shared reading, validation of the data and start-up save;
  it falls as N grows, so each N is measured, not inferred from another.
* ``batched``: one TBPTT chunk (64 series x 96 steps, M4 Hourly's shapes: 2-layer
  LSTM of 64, H 48) forward and backward, for one member, and for N members batched
  two ways: one LSTM of N x 64 whose weights would be block-diagonal (what grouped
  layers cost with torch's fused kernel), and a head whose per-member weights are
  batched with bmm. Median of ``--repeats`` timings each, in one process.

Results go to ``bench/results/ensemble.json`` (replaced); see ``bench/README.md``.

Usage: python bench/ensemble.py [--members N [N ...]] [--epochs E] [--data PATH] [--horizon H]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import machine_info, write_json_atomically

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_PATH = BENCH_DIR / "results" / "ensemble.json"
RNNCAST = Path(sys.executable).parent / "rnncast"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "m3_monthly_train.parquet"


def run(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - began


def runs(data: Path, horizon: int, members: int, epochs: int, work: Path) -> dict[str, Any]:
    fixed = ["--horizon", str(horizon), "--max-epochs", str(epochs), "--patience", str(epochs),
             "--no-refit", "--seed", "1", "--quiet"]  # fmt: skip
    together_dir = work / "together"
    together = run([str(RNNCAST), "train", str(data), *fixed, "--ensemble", str(members),
                    "--out", str(together_dir)])  # fmt: skip
    history = json.loads((together_dir / "history.json").read_text())
    chunks = [member["chunk_len"] for member in history["members"]]
    seeds = [member["seed"] for member in history["members"]]
    separate = []
    for seed, chunk in zip(seeds, chunks, strict=True):
        out = work / f"alone{seed}"
        command = [str(RNNCAST), "train", str(data), *fixed, "--ensemble", "1", "--seed",
                   str(seed), "--chunk-len", str(chunk), "--out", str(out)]  # fmt: skip
        separate.append(run(command))
    return {"data": data.name, "members": members, "epochs": epochs, "chunks": chunks,
            "together_s": round(together, 3), "separate_s": [round(s, 3) for s in separate],
            "ratio": round(together / sum(separate), 4)}  # fmt: skip


def batched(members: int, repeats: int) -> dict[str, Any]:
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(0)
    batch, steps, inputs, hidden, size, horizon, quantiles, future = 64, 96, 8, 64, 16, 48, 3, 6
    x = torch.randn(batch, steps, inputs)
    known = torch.randn(batch, steps, horizon, future)

    def median_ms(step) -> float:
        step()
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            step()
            times.append((time.perf_counter() - began) * 1000)
        return round(statistics.median(times), 2)

    lstm = nn.LSTM(inputs, hidden, 2, batch_first=True)
    wide = nn.LSTM(inputs, hidden * members, 2, batch_first=True)

    def encoder(network):
        def step():
            y, _ = network(x)
            y.sum().backward()

        return step

    glob = torch.randn(hidden, horizon * size, requires_grad=True)
    local = torch.randn(future, size, requires_grad=True)
    out = torch.randn(size, quantiles, requires_grad=True)
    summaries = torch.randn(batch * steps, hidden, requires_grad=True)

    def head_one():
        per_step = (summaries @ glob).view(-1, size) + known.reshape(-1, future) @ local
        (torch.relu(per_step) @ out).sum().backward()

    globs = torch.randn(members, hidden, horizon * size, requires_grad=True)
    locals_ = torch.randn(future, members * size, requires_grad=True)
    outs = torch.randn(members, size, quantiles, requires_grad=True)
    stacked = torch.randn(members, batch * steps, hidden, requires_grad=True)

    def head_batched():
        per_step = torch.bmm(stacked, globs).view(members, -1, size)
        known_part = (known.reshape(-1, future) @ locals_).view(-1, members, size)
        hidden_part = torch.relu(per_step + known_part.transpose(0, 1))
        torch.bmm(hidden_part, outs).sum().backward()

    one_encoder, one_head = median_ms(encoder(lstm)), median_ms(head_one)
    wide_encoder, batched_head = median_ms(encoder(wide)), median_ms(head_batched)
    return {
        "members": members,
        "one_member_ms": {"encoder": one_encoder, "head": one_head},
        "batched_ms": {"encoder_block_diagonal": wide_encoder, "head_bmm": batched_head},
        "ratio_to_separate": {
            "encoder": round(wide_encoder / (members * one_encoder), 3),
            "head": round(batched_head / (members * one_head), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--horizon", type=int, default=18)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"{args.data} is missing; pass --data")
    load_start = os.getloadavg()
    trained = []
    for members in args.members:
        with tempfile.TemporaryDirectory(prefix="rnncast-ensemble-") as work:
            trained.append(runs(args.data, args.horizon, members, args.epochs, Path(work)))
    result = {
        "benchmark": "ensemble",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "load_average_start": load_start,
        "runs": trained,
        "batched": batched(args.members[0], args.repeats),
        "load_average_end": os.getloadavg(),
        "machine": machine_info(("rnncast", "torch", "numpy")),
    }
    write_json_atomically(RESULTS_PATH, result)
    print(json.dumps({"runs": trained, "batched": result["batched"]}, indent=1))


if __name__ == "__main__":
    main()
