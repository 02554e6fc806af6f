"""Forecasts from a trained model over new history.

The encoder warms its state up over the last ``context`` steps of every series
(all of them by default, as in training, where every series is read from its
first step) and the head emits the next H steps from the last one. Series the
model was trained on keep their training scale; new series are scaled from
their own history, so a global model forecasts series it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from rnncast import distributed
from rnncast.artifact import Model
from rnncast.bases import base_forecasts, history_scales
from rnncast.batches import (
    Block,
    SeriesTensors,
    Windows,
    gather_block,
    gather_windows,
    lay_out,
    summaries_at,
)
from rnncast.errors import DataError
from rnncast.frequency import Frequency
from rnncast.inputs import input_arrays
from rnncast.model_data import check_ahead, check_fits
from rnncast.nn.ensemble import Ensemble, median_of_members
from rnncast.panel import Panel
from rnncast.scaling import Scaler, fit_scaler, from_model_space, to_model_space, unscale
from rnncast.time_axis import shift_times
from rnncast.timezones import to_datetimes
from rnncast.warm import WarmStates, keeps_states, read_states

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Forecasts:
    """H future steps of S series: quantiles (S, H, Q) in the data's units."""

    ids: np.ndarray  # (S,) str
    times: np.ndarray  # (S, H) int64 ns
    quantiles: tuple[float, ...]  # what the network emits, sorted, with 0.5
    values: np.ndarray  # (S, H, Q) float64
    columns: tuple[float, ...]  # quantiles the user asked for, one column each
    freq: Frequency
    tz: str | None

    @property
    def point(self) -> np.ndarray:
        """(S, H) the point forecast: the median."""
        return self.values[..., self.quantiles.index(0.5)]

    def to_frame(self) -> pd.DataFrame:
        """One row per (series, future step): unique_id, ds, y_hat, y_q10, …"""
        import pandas as pd

        horizon = self.times.shape[1]
        frame = pd.DataFrame(
            {
                "unique_id": np.repeat(self.ids.astype(str), horizon),
                "ds": to_datetimes(self.times.reshape(-1), self.tz, self.freq),
                "y_hat": self.point.reshape(-1),
            }
        )
        for quantile in self.columns:
            position = self.quantiles.index(quantile)
            frame[quantile_column(quantile)] = self.values[..., position].reshape(-1)
        return frame


def quantile_column(quantile: float) -> str:
    """0.1 -> ``y_q10``, 0.025 -> ``y_q2.5``, 0.975 -> ``y_q97.5``."""
    return f"y_q{round(quantile * 100, 6):g}"


def forecast(
    model: Model,
    panel: Panel,
    *,
    context: int | None = None,
    batch_size: int = 512,
    device: torch.device | None = None,
) -> Forecasts:
    """Forecast the next ``model.config.horizon`` steps of every series of ``panel``.

    ``context`` limits the history read per series (TBPTT models; window models
    read their lookback). Raises DataError when the panel does not fit the model
    (frequency, unknown ids for a model with id embeddings) or a forecast is not
    finite.
    """
    config = model.config
    if context is not None and (panel.lengths > context).any():
        # Only the last `context` steps are read, by the network and the base alike.
        keep = np.minimum(panel.lengths, context)
        panel = replace(panel, begins=panel.ends - keep,
                        start_times=shift_times(panel.start_times, panel.lengths - keep,
                                                panel.freq))  # fmt: skip
    # First: steps past the last representable time are refused naming the series,
    # before any work.
    times = panel.future_times(config.horizon)  # (S, H)
    check_ahead(model, panel)
    lengths = panel.lengths
    values = _forecast(model, panel, lengths[:, None], panel.ends, batch_size, device, False,
                       warm_start=True)  # fmt: skip
    return Forecasts(
        ids=panel.ids,
        times=times,
        quantiles=config.output_quantiles,
        values=values[:, 0],
        columns=config.quantiles if config.loss == "quantile" else (),
        freq=panel.freq,
        tz=panel.tz,
    )


def forecast_origins(
    model: Model,
    panel: Panel,
    cuts: np.ndarray,
    *,
    batch_size: int = 512,
    device: torch.device | None = None,
    model_space: bool = False,
) -> np.ndarray:
    """Forecasts from K origins inside every series, as a backtest needs them.

    ``cuts`` (S, K) int64: how many steps of each series origin k sees (1 to its
    length); the forecast covers the H steps after them. A TBPTT model reads each
    series once and decodes at every origin, so K origins cost about one forecast.
    Only steps before an origin reach its forecast: the state at step t has read
    up to t, and the season inputs are past values. Series the model has not seen
    are scaled from their history before their first origin. Returns (S, K, H, Q)
    in the data's units; raises like ``forecast``. ``model_space``: ``panel`` is in the
    model's space already (scaling.to_model_space), and so are the forecasts, as the
    choices made in training read them.
    """
    cuts = np.asarray(cuts, dtype=np.int64)
    if cuts.ndim != 2 or cuts.shape[0] != panel.n_series:
        raise ValueError(f"cuts must be (series, origins), got shape {cuts.shape}")
    if (cuts < 1).any() or (cuts > panel.lengths[:, None]).any():
        raise ValueError("every cut must lie between 1 and its series' length")
    seen_ends = panel.begins + cuts.min(axis=1)
    return _forecast(model, panel, cuts, seen_ends, batch_size, device, model_space)


def _forecast(
    model: Model,
    panel: Panel,
    cuts: np.ndarray,
    seen_ends: np.ndarray,
    batch_size: int,
    device: torch.device | None,
    model_space: bool,
    warm_start: bool = False,
) -> np.ndarray:
    """(S, K, H, Q) forecasts in data units after ``cuts`` (S, K) steps of every
    series; unseen series get a scaler fitted on their steps before ``seen_ends``.
    With ``model_space`` the panel and the forecasts are in the model's space. With
    ``warm_start`` (origins at the series' ends) a series whose history begins with
    what the model's warm states read starts from them (warm.py)."""
    device = device or torch.device("cpu")
    check_fits(model, panel)
    transform = "none" if model_space else model.config.transform or "none"
    given = panel
    panel, scaler, tensors = _laid_out(model, panel, seen_ends, device, transform)
    config = model.config
    network = model.network.to(device).eval()
    n_origins = cuts.shape[1]
    reach = model.training.lookback if model.training.strategy == "window" else int(cuts.max())
    # Read from `reach` steps before the earliest origin; the block then runs to the end.
    first = np.maximum(cuts.min(axis=1) - reach, 0)
    positions = skip = None
    if (warm_start and model.warm is not None and model.training.strategy != "window"
            and model.warm.read_by(network)):  # fmt: skip
        positions = _positions(model, given)
        skip = model.warm.usable(given, positions)
        first = np.maximum(first, skip)
    order = np.argsort(cuts.max(axis=1) - first, kind="stable")  # similar lengths, little padding
    scaled = np.empty((panel.n_series, n_origins, config.horizon, len(config.output_quantiles)))
    # An ensemble's members run one at a time, so a batch holds one network's
    # summaries at once, not every member's; the median comes from their outputs.
    networks = list(network.members) if isinstance(network, Ensemble) else [network]
    with torch.no_grad():
        for begin in range(0, order.shape[0], batch_size):
            series = order[begin : begin + batch_size]
            origins = cuts[series] - 1  # (B, K) step of the last value each origin sees
            if model.training.strategy == "window":
                windows = gather_windows(
                    tensors, np.repeat(series, n_origins), origins.reshape(-1), reach
                )
                outputs = [_decode_windows(net, windows, n_origins) for net in networks]
            else:
                block = gather_block(tensors, series, first[series])
                last = int((origins - first[series, None]).max()) + 1
                rows = torch.arange(series.shape[0], device=device).unsqueeze(1)  # (B, 1)
                steps = torch.from_numpy(origins - first[series, None]).to(device)  # (B, K)
                outputs = [
                    _decode_block(net, block, last, rows, steps,
                                  None if skip is None else
                                  model.warm.initial(member, series, positions, skip, device))
                    for member, net in enumerate(networks)
                ]  # fmt: skip
            out = outputs[0] if len(outputs) == 1 else median_of_members(torch.stack(outputs))
            scaled[series] = out.float().cpu().numpy()
    values = unscale(scaled, scaler)
    if model.combination is not None:
        # The base reads all the history given, whatever the network's reach: a window
        # model's lookback is no limit on it.
        base = base_forecasts(panel.values, panel.begins, cuts, config.horizon,
                              panel.freq.season_length, model.combination.base,
                              logarithms=config.transform == "log")  # fmt: skip
        scale = history_scales(panel.values, panel.begins, cuts, panel.freq.season_length)
        values = model.combination.apply(values, base, config.output_quantiles.index(0.5), scale)
    values = from_model_space(values, transform)  # may overflow: checked below
    if model.combination is not None:
        # A series that never moved is forecast as the constant it is, to the digit:
        # every base says so, and no network output is evidence enough to say otherwise.
        still = _never_moved(given.values, given.begins, given.begins + cuts.max(axis=1))
        values[still] = given.values[given.begins[still], None, None, None]
    broken = ~np.isfinite(values).all(axis=(1, 2, 3))
    if broken.any():
        names = ", ".join(repr(str(i)) for i in panel.ids[broken][:5])
        raise DataError(
            f"forecasts of {int(broken.sum())} series are not finite ({names}); nothing was "
            "written. Their values may be far outside the range the model was trained on"
        )
    return values


def _never_moved(values: np.ndarray, begins: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(S,) bool: whether every value in ``values[begins[s] : ends[s]]`` (never empty) is
    the same; NaN anywhere is movement enough. One pass over all series at once."""
    bounds = np.column_stack([begins, ends]).reshape(-1)
    # reduceat reads [bounds[i], bounds[i + 1]); a last bound at the end needs one more value.
    padded = np.append(values, values[-1:])
    highest = np.maximum.reduceat(padded, bounds)[::2]
    lowest = np.minimum.reduceat(padded, bounds)[::2]
    return highest - lowest == 0


def _decode_windows(network: torch.nn.Module, windows: Windows, n_origins: int) -> torch.Tensor:
    """One network's forecasts from windows of B·K origins: (B, K, H, Q)."""
    summaries, _ = network.encode(windows.inputs, windows.codes)
    out = network.decode(summaries[:, -1:], windows.future, windows.codes)  # (B·K, 1, H, Q)
    return out.view(-1, n_origins, *out.shape[2:])


def _decode_block(
    network: torch.nn.Module,
    block: Block,
    last: int,
    rows: torch.Tensor,
    steps: torch.Tensor,
    state: tuple[torch.Tensor, ...] | None = None,
) -> torch.Tensor:
    """One network's forecasts at block positions ``steps`` (B, K): (B, K, H, Q);
    ``state``: the encoder's before the block's first position (None: zeros)."""
    summaries = summaries_at(network.encode, block, last, rows, steps,
                             network.summary_width, state)  # fmt: skip
    return network.decode(summaries, block.future_at(rows, steps), block.codes_at(rows))


def _laid_out(
    model: Model, panel: Panel, seen_ends: np.ndarray, device: torch.device, transform: str
) -> tuple[Panel, Scaler, SeriesTensors]:
    """``panel`` in the model's space, its scaler (unseen series fitted on their steps
    before ``seen_ends``) and its tensors as the network reads them."""
    panel = to_model_space(panel, transform)  # once: ``seen`` is a part of it
    scaler, codes = _match_scaler(model, replace(panel, ends=seen_ends))
    config = model.config
    season = panel.freq.season_length if config.season_inputs else 0
    extra = input_arrays(panel, model.schema.get("inputs"), config.horizon)
    tensors = lay_out(panel, scaler, config.horizon, season, device, codes,
                      relative=config.relative_inputs and season > 0,
                      long_season=(config.long_season or 0) if season else 0,
                      static_numbers=extra.static_numbers, static_codes=extra.static_codes,
                      known_features=extra.known_features)  # fmt: skip
    return panel, scaler, tensors


def warm_states(
    model: Model, panel: Panel, batch_size: int = 512, series_per_lay_out: int = 10_000
) -> WarmStates | None:
    """The encoder states ``model`` keeps for its training series (warm.py), read from
    ``panel``, in the data's units, which holds them all; None where it keeps none.

    Under torchrun ``panel`` is this process's share of the training data
    (panel_shares.py): every process reads the states of its own series and rank 0
    alone receives them joined, in order (None on the others): it alone writes the
    model, and reading every history once more is an epoch's forward pass that one
    process would otherwise make while the others wait."""
    ids = [str(name) for name in model.scaler.ids]
    where = {str(name): index for index, name in enumerate(panel.ids)}
    order = np.array([where[name] for name in ids if name in where], dtype=np.int64)
    if not keeps_states(model.config, model.training, len(ids)):
        return None
    current = distributed.world()
    # Every series must be there, in one share or another.
    if int(distributed.sum_numbers([order.shape[0]])[0]) < len(ids):
        return None
    device = next(model.network.parameters()).device
    transform = model.config.transform or "none"

    def lay_out(part: Panel) -> SeriesTensors:
        return _laid_out(model, part, part.ends, device, transform)[2]

    # Under torchrun a share may hold none of them (its series were all too short).
    states = None
    if order.size:
        states = read_states(model.network.eval(), lay_out, panel.take(order), model.config,
                             batch_size, series_per_lay_out)  # fmt: skip
    if not current.is_distributed:
        return states
    shares = distributed.gather_to_main(states)
    return None if shares is None else WarmStates.joined([s for s in shares if s is not None])


def _positions(model: Model, panel: Panel) -> np.ndarray:
    """(S,) int64: each series' position among the model's training series, -1 for one
    it never saw."""
    known = {str(name): position for position, name in enumerate(model.scaler.ids)}
    return np.array([known.get(str(name), -1) for name in panel.ids], dtype=np.int64)


def _match_scaler(model: Model, panel: Panel) -> tuple[Scaler, np.ndarray]:
    """The scaler of each series of ``panel``: its training scaler when the model
    knows the id, else one fitted on its own history; and its embedding code."""
    positions = _positions(model, panel)
    unseen = np.flatnonzero(positions < 0)
    if unseen.size and model.config.id_embedding:
        names = ", ".join(repr(str(i)) for i in panel.ids[unseen][:5])
        raise DataError(
            f"{unseen.size} series were not in the training data ({names}) and this model "
            "learned an embedding per series id (--id-embedding); forecast only known series "
            "or retrain without --id-embedding"
        )
    scaler = model.scaler.take(np.maximum(positions, 0))
    if unseen.size:
        own = fit_scaler(panel.take(unseen), model.scaler.method)
        loc, scale = scaler.loc.copy(), scaler.scale.copy()
        loc[unseen] = own.loc
        # A shared scale stays the one the network learned on.
        shared = model.scaler.method == "shared"
        scale[unseen] = model.scaler.scale[0] if shared else own.scale
        scaler = Scaler(
            scaler.method, panel.ids, loc, scale, scaler.covariate_loc, scaler.covariate_scale
        )
    return scaler, np.maximum(positions, 0)
