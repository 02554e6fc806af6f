"""Regenerate the saved-model fixture ``tests/golden/model_v1/`` and its forecasts.

The fixture proves that a model directory written by this format version keeps
loading and forecasting the same numbers (tests/test_artifact.py). Regenerate it
only on purpose, when the model format changes (and then also bump the format
version and keep the old fixture as ``model_v<old>``):

    python scripts/make_golden_model.py [--out-dir tests/golden]

It writes ``model_v1/`` (a tiny GRU, under 100 KB) and ``model_v1_forecast.csv``
(its forecasts of ``golden_frame()``, the data it was trained on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "tests" / "golden"
MODEL_DIR = "model_v1"
FORECAST_CSV = "model_v1_forecast.csv"
HORIZON = 7


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
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    import torch

    from rnncast import DataConfig, ModelConfig, Panel, TrainConfig, forecast, train

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR)
    args = parser.parse_args()

    torch.set_num_threads(1)
    data = DataConfig(covariates=("temperature",))
    panel = Panel.from_frame(golden_frame(), data)
    model = train(
        panel,
        ModelConfig(horizon=HORIZON, cell="gru", hidden=8, layers=1),
        TrainConfig(max_epochs=3, seed=0, device="cpu", test_size=0),
        out=args.out_dir / MODEL_DIR,
        data=data,
    )
    forecast(model, panel).to_frame().to_csv(args.out_dir / FORECAST_CSV, index=False)
    size = sum(p.stat().st_size for p in (args.out_dir / MODEL_DIR).iterdir())
    print(f"wrote {args.out_dir / MODEL_DIR} ({size:,} bytes) and {args.out_dir / FORECAST_CSV}")


if __name__ == "__main__":
    main()
