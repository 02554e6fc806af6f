"""How to run IndRNN's time loop on CPU: four ways, against nn.GRU of the same size.

Every variant computes W x + b in one nn.Linear over (B, T, F) and differs only in how the
elementwise recurrence h_t = relu(pre_t + u * h_{t-1}) walks T:

- plain:    a Python loop under autograd (one graph node per op per step);
- function: rnncast.nn.indrnn, an autograd.Function with hand-written in-place loops;
- script:   the same Function with both loops compiled by torch.jit.script;
- compile:  torch.compile of the plain loop (compile time reported separately, since the CLI
            runs from cron and every run would pay it).

Times are medians over --repeats runs after warm-up, on torch.set_num_threads(2) (the target
machine has 2 cores), for one layer, forward + backward of sum(y * g); `ms_per_step` divides
by T. Inference (no grad) at the batch of M4 hourly's 414 series over 960 steps is timed too.

    .venv/bin/python bench/indrnn_loop.py                  # writes bench/results/indrnn_loop.json
    .venv/bin/python bench/indrnn_loop.py --repeats 3 --no-compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import Tensor, nn

from rnncast.nn.indrnn import IndRNNLayer, _IndRNNScan

RESULTS = Path(__file__).resolve().parent / "results" / "indrnn_loop.json"
FEATURES = 16
TRAIN_CASES = [(64, 96, 64), (64, 96, 128)]  # (B, T, D): a training batch of TBPTT chunks
INFERENCE_CASES = [(414, 960, 64), (414, 960, 128)]
TARGET_RATIO = 1.5  # IndRNN's time per step may be at most 1.5x GRU's
MAX_TRIES = 5


def _plain_scan(pre: Tensor, u: Tensor, h: Tensor) -> Tensor:
    outputs = []
    for pre_t in pre.unbind(0):
        h = torch.relu(pre_t + u * h)
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, D)


def _script_forward(pre: Tensor, u: Tensor, h: Tensor) -> None:
    for t in range(pre.shape[0]):
        pre[t].addcmul_(u, h).relu_()
        h = pre[t]


def _script_backward(a: Tensor, c: Tensor) -> None:
    for t in range(c.shape[0] - 2, -1, -1):
        c[t].addcmul_(a[t], c[t + 1])


def _scripted(function: Callable) -> tuple[Callable, list[str]]:
    """Script a function; return it with the warnings torch raised while doing so."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted = torch.jit.script(function)
    return scripted, sorted({f"{w.category.__name__}: {w.message}" for w in caught})


class _ScriptScan(torch.autograd.Function):
    """_IndRNNScan with its loops swapped for TorchScript ones (set up in main)."""

    forward_loop: Callable
    backward_loop: Callable

    @staticmethod
    def forward(ctx, pre: Tensor, u: Tensor, h0: Tensor) -> Tensor:
        _ScriptScan.forward_loop(pre, u, h0)
        ctx.mark_dirty(pre)
        ctx.save_for_backward(pre, u, h0)
        return pre

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out, u, h0 = ctx.saved_tensors
        active = torch.sign(out)
        a = active * u
        grad_pre = active.mul_(grad_out)
        _ScriptScan.backward_loop(a, grad_pre)
        products = torch.mul(grad_pre[1:], out[:-1], out=a[1:])
        grad_u = products.sum((0, 1)) + (grad_pre[0] * h0).sum(0)
        return grad_pre, grad_u, grad_pre[0] * u


def _make_indrnn(scan: Callable, hidden: int) -> Callable[[Tensor], Tensor]:
    layer = IndRNNLayer(FEATURES, hidden, 2 ** (1 / 96))

    def run(x: Tensor) -> Tensor:
        pre = layer.linear(x.transpose(0, 1)).contiguous()  # (T, B, D)
        h0 = x.new_zeros(x.shape[0], hidden)
        return scan(pre, layer.recurrent_weight, h0).transpose(0, 1)  # (B, T, D)

    run.parameters = layer.parameters  # type: ignore[attr-defined]
    return run


def _make_gru(hidden: int) -> Callable[[Tensor], Tensor]:
    gru = nn.GRU(FEATURES, hidden, batch_first=True)

    def run(x: Tensor) -> Tensor:
        return gru(x)[0]

    run.parameters = gru.parameters  # type: ignore[attr-defined]
    return run


def _time(steps: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, list]:
    """Milliseconds per call of each step, taken round-robin so that load from anything else
    on the machine falls on every variant alike rather than on whichever ran at the time."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def _cpu_sample() -> tuple[float, float, float] | None:
    """(wall, busy CPU seconds of the whole machine, this process's CPU seconds); None
    where /proc/stat is missing (not Linux)."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    user, nice, system, _, _, irq, softirq, steal = map(int, first)
    own = os.times()
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    return time.monotonic(), busy, own.user + own.system


def _others_cores(start: tuple[float, float, float] | None) -> float | None:
    """CPU cores other processes kept busy since start: the shared 2-core machine runs other
    benchmarks, and nn.GRU's threads suffer from that far more than the IndRNN loops do."""
    end = _cpu_sample()
    if start is None or end is None:
        return None
    cores = ((end[1] - start[1]) - (end[2] - start[2])) / (end[0] - start[0])
    return max(0.0, round(cores, 2))  # tick rounding can dip just below 0


def _wait_for_quiet(max_seconds: float) -> float | None:
    """Wait until other processes use under 0.2 cores over 2 s, or max_seconds pass."""
    deadline = time.monotonic() + max_seconds
    while True:
        start = _cpu_sample()
        time.sleep(2)
        cores = _others_cores(start)
        if cores is None or cores < 0.2 or time.monotonic() > deadline:
            return cores


def _run_case(
    mode: str,
    shape: tuple[int, int, int],
    steps: dict[str, Callable[[], None]],
    repeats: int,
    wait_quiet: float,
) -> list[dict]:
    """Time one case and return a row per variant, with ratios to GRU and the others' load.

    A case during which other processes took over 0.3 cores is run again (MAX_TRIES tries at most):
    GRU's two threads lose far more to a busy machine than the IndRNN loops do, which
    would flatter the ratio.
    """
    attempt = 0
    while True:
        attempt += 1
        _wait_for_quiet(wait_quiet)
        start = _cpu_sample()
        # Warm-up calls: TorchScript's profiling executor optimises only after profiled runs.
        times = _time(steps, repeats, warmup=3)
        others = _others_cores(start)
        if others is None or others <= 0.3 or attempt == MAX_TRIES:
            break
    rows = [_row(name, mode, shape, raw) for name, raw in times.items()]
    gru = next(r["ms_per_step"] for r in rows if r["variant"] == "gru")
    for r in rows:
        r["ratio_to_gru"] = round(r["ms_per_step"] / gru, 3)
        r["others_cpu_cores"] = others
        r["attempts"] = attempt
    return rows


def _compiled(hidden: int, x: Tensor, g: Tensor) -> tuple[Callable[[Tensor], Tensor], dict]:
    """The compile variant, and the seconds its first forward + backward took: with an empty
    on-disk cache (a new machine, or after a torch upgrade) and with the cache the first call
    left (every later cron run), each in a reset dynamo as a new process would be."""
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="indrnn_inductor_") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        for kind in ("empty_cache", "warm_cache"):
            torch._dynamo.reset()
            model = _make_indrnn(torch.compile(_plain_scan, dynamic=False), hidden)
            start = time.perf_counter()
            _train_step(model, x, g)()
            seconds[kind] = round(time.perf_counter() - start, 2)
    # The cache is gone now; later calls hit dynamo's in-memory compiled code only.
    del os.environ["TORCHINDUCTOR_CACHE_DIR"]
    return model, seconds


def _train_step(model: Callable[[Tensor], Tensor], x: Tensor, g: Tensor) -> Callable[[], None]:
    params = list(model.parameters())  # type: ignore[attr-defined]

    def step() -> None:
        for p in params:
            p.grad = None
        (model(x) * g).sum().backward()

    return step


def _infer_step(model: Callable[[Tensor], Tensor], x: Tensor) -> Callable[[], None]:
    def step() -> None:
        with torch.no_grad():
            model(x)

    return step


def _row(variant: str, mode: str, shape: tuple[int, int, int], raw: list[float]) -> dict:
    batch, steps, hidden = shape
    median = statistics.median(raw)
    return {
        "variant": variant,
        "mode": mode,
        "B": batch,
        "T": steps,
        "D": hidden,
        "F": FEATURES,
        "median_ms": round(median, 3),
        "ms_per_step": round(median / steps, 4),
        "raw_ms": [round(t, 3) for t in raw],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=90.0,
        help="seconds to wait, before each case, for other processes to go idle",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    load_before = os.getloadavg()

    _ScriptScan.forward_loop, forward_warnings = _scripted(_script_forward)
    _ScriptScan.backward_loop, backward_warnings = _scripted(_script_backward)
    scans = {"plain": _plain_scan, "function": _IndRNNScan.apply, "script": _ScriptScan.apply}
    compile_seconds = {}
    rows = []
    for shape in TRAIN_CASES:
        batch, steps, hidden = shape
        x = torch.randn(batch, steps, FEATURES)
        g = torch.randn(batch, steps, hidden)
        models = {name: _make_indrnn(scan, hidden) for name, scan in scans.items()}
        if not args.no_compile:
            key = f"B{batch}_T{steps}_D{hidden}"
            models["compile"], compile_seconds[key] = _compiled(hidden, x, g)
        models["gru"] = _make_gru(hidden)
        train_steps = {name: _train_step(model, x, g) for name, model in models.items()}
        rows += _run_case("train", shape, train_steps, args.repeats, args.wait_quiet)
    for shape in INFERENCE_CASES:
        batch, steps, hidden = shape
        x = torch.randn(batch, steps, FEATURES)
        models = {name: _make_indrnn(scan, hidden) for name, scan in scans.items()}
        models["gru"] = _make_gru(hidden)
        infer_steps = {name: _infer_step(model, x) for name, model in models.items()}
        inference_repeats = max(3, args.repeats // 2)
        rows += _run_case("inference", shape, infer_steps, inference_repeats, args.wait_quiet)

    chosen_train = [r for r in rows if r["variant"] == "function" and r["mode"] == "train"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "repeats": args.repeats,
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "chosen": "function",
        "target": f"IndRNN ms_per_step <= {TARGET_RATIO} x GRU's, forward + backward",
        "target_met": all(r["ratio_to_gru"] <= TARGET_RATIO for r in chosen_train),
        "compile_first_call_seconds": compile_seconds,
        "script_warnings": forward_warnings + backward_warnings,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(temporary, args.out)
    for r in rows:
        print(
            f"{r['mode']:9} {r['variant']:8} B={r['B']:3} T={r['T']:3} D={r['D']:3} "
            f"{r['median_ms']:9.2f} ms  {r['ms_per_step']:7.4f} ms/step  x{r['ratio_to_gru']}"
            f"  others {r['others_cpu_cores']} cores, try {r['attempts']}"
        )
    print(f"compile: {compile_seconds} s; script warnings: {result['script_warnings']}")


if __name__ == "__main__":
    main()
