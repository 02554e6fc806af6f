"""Write the saved-model fixture of the current format, ``tests/golden/model_vN/``,
and its forecasts.

Each fixture proves that a model directory written by its format version keeps
loading and forecasting the same numbers (tests/test_artifact.py); the fixtures of
older versions stay as they were written. Run this only on purpose, when the model
format version goes up:

    python scripts/make_golden_model.py [--out-dir tests/golden]

It writes ``model_vN/`` (an ensemble of two tiny GRUs, under 100 KB) and ``model_vN_forecast.csv``
(its forecasts of ``golden_future_frame()``: the data it was trained on and the future
rows of its future covariate), N being the format version this rnncast writes. From
format 4 the model reads every covariate role: a past and a future covariate, a static
category and German holidays.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
HORIZON = 7


def model_dir(version: int) -> str:
    return f"model_v{version}"


def forecast_csv(version: int) -> str:
    return f"model_v{version}_forecast.csv"


def golden_frame() -> pd.DataFrame:
    """Two daily series of different lengths with a weekly cycle, a trend and a
    covariate; written with plain arithmetic (no random numbers), so it never changes."""
    frames = []
    for index, (name, length) in enumerate([("north", 56), ("south", 49)]):
        steps = np.arange(length, dtype=np.float64)
        temperature = 12.0 + 6.0 * np.cos(2 * np.pi * (steps + 3 * index) / 23.0)
        y = (
            20.0
            + 8.0 * index
            + (4.0 + index) * np.sin(2 * np.pi * steps / 7.0)
            + 0.1 * steps
            - 0.3 * temperature
            + 0.5 * np.sin(1.7 * steps + index)  # deterministic wiggle in place of noise
        )
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": name,
                    "ds": pd.date_range("2024-03-04", periods=length, freq="D"),
                    "y": y,
                    "temperature": temperature,
                    "temperature_forecast": temperature + 0.5 * np.cos(steps),
                    "region": ["coast", "inland"][index],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def golden_future_frame() -> pd.DataFrame:
    """``golden_frame()`` and, per series, HORIZON future rows: the target and the
    measured temperature empty, the temperature forecast filled."""
    frames = []
    for name, frame in golden_frame().groupby("unique_id", sort=False):
        steps = np.arange(len(frame), len(frame) + HORIZON, dtype=np.float64)
        future = pd.DataFrame(
            {
                "unique_id": name,
                "ds": pd.date_range(frame["ds"].iloc[-1], periods=HORIZON + 1, freq="D")[1:],
                "y": np.nan,
                "temperature": np.nan,
                "temperature_forecast": 12.0 + 6.0 * np.cos(2 * np.pi * steps / 23.0),
                "region": frame["region"].iloc[0],
            }
        )
        frames += [frame, future]
    return pd.concat(frames, ignore_index=True)


# What the newest golden model reads: every covariate role.
GOLDEN_DATA = {
    "covariates": ("temperature",),
    "future_covariates": ("temperature_forecast",),
    "static_covariates": ("region",),
    "holidays": ("DE",),
}


def main() -> None:
    import torch

    from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, forecast, train
    from rnncast.model_records import FORMAT_VERSION

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = DataConfig(**GOLDEN_DATA)
    panel = Panel.from_frame(golden_frame(), data)
    model = train(
        panel,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        TrainConfig(max_epochs=3, seed=0, device="cpu", test_size=0, ensemble=2),
        out=args.out_dir / model_dir(FORMAT_VERSION),
        data=data,
    )
    directory, csv = (
        args.out_dir / model_dir(FORMAT_VERSION),
        args.out_dir / forecast_csv(FORMAT_VERSION),
    )
    ahead = Panel.from_frame(golden_future_frame(), replace(data, future_rows="require"))
    forecast(model, ahead).to_frame().to_csv(csv, index=False)
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"wrote {directory} ({size:,} bytes) and {csv}")


if __name__ == "__main__":
    main()
