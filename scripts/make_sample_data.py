"""Generate the synthetic sample data shipped in ``sample_data/``.

The README quick start and the tests need small data sets that look like real forecasting
inputs without carrying anyone's real data, so everything here is invented and seeded:

* ``load_hourly.{csv,parquet}``: long layout, five electricity meters (kW) with a shared
  regional temperature covariate (measured) and its day-ahead forecast (the measured value
  plus forecast error), including deliberate gaps and NaNs to exercise validation. Two US
  public holidays (Martin Luther King Jr. Day, Presidents' Day) are run like Sundays.
* ``load_hourly_next_day.{csv,parquet}``: the same history and then each meter's next 24
  hours with the load and the measured temperature empty and the temperature forecast
  filled: what ``rnncast forecast`` reads for a model trained with
  ``--future-covariates temperature_forecast``.
* ``sales_daily_wide.{csv,parquet}``: wide layout, daily units sold for six store/product
  series over the leap year 2024, with weekly, yearly and Christmas effects and closed days.

Rerunning with the same seed rewrites byte-identical CSV files.

Usage: python scripts/make_sample_data.py [--out DIR] [--seed N]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_OUT_DIR = Path(__file__).resolve().parent.parent / "sample_data"
DEFAULT_SEED = 20250106

LOAD_START = "2025-01-06 00:00"  # a Monday, so weekday arithmetic below needs no offset
LOAD_HOURS = 91 * 24
NEXT_DAY_HOURS = 24  # the future rows of load_hourly_next_day
# US public holidays in the period (hard-coded so the data never depends on a library).
LOAD_HOLIDAYS = ["2025-01-20", "2025-02-17"]
FORECAST_ERROR_SD_C = 0.8  # a day-ahead temperature forecast misses by about a degree
# Hour indices, chosen by hand so the gaps are isolated and away from the series edges.
METER_02_DROPPED_HOURS = [333, 1010, 1777, *range(1500, 1505)]
METER_04_NAN_HOURS = [250, 777, 1404, 2000]
HEATING_BALANCE_POINT_C = 16.0  # buildings need no heating above roughly this outdoor temperature

SALES_START = "2024-01-01"
SALES_DAYS = 366
# Mon..Sun: shoppers stock up on Friday and at the weekend.
SALES_WEEKDAY_FACTOR = np.array([0.90, 0.88, 0.92, 0.97, 1.12, 1.35, 1.15])


@dataclass(frozen=True)
class MeterSpec:
    name: str
    base_kw: float
    office_share: float  # 0 = household-like daily shape, 1 = office-like
    heating_kw_per_degc: float
    growth_over_period: float
    temperature_offset_c: float  # siting differences: city centre vs. outskirts


METERS = [
    MeterSpec("meter_01", 24.0, 0.0, 0.9, 0.02, 0.4),
    MeterSpec("meter_02", 180.0, 1.0, 4.5, 0.03, 0.9),
    MeterSpec("meter_03", 45.0, 0.0, 1.6, -0.02, -0.6),
    MeterSpec("meter_04", 120.0, 0.85, 3.0, 0.04, 0.2),
    MeterSpec("meter_05", 75.0, 0.5, 2.2, 0.01, -0.3),
]

# (relative size, growth over the year): store_c is in a growing neighbourhood.
STORES = {"store_a": (1.0, 0.02), "store_b": (0.55, -0.03), "store_c": (1.6, 0.10)}
# (mean units per day at store_a, day of year when demand peaks in the mild yearly cycle)
PRODUCTS = {"bread": (70.0, 15), "milk": (95.0, 200)}
CLOSED_ALL_STORES = ["2024-01-01", "2024-12-25"]
CLOSED_ONE_STORE = {"store_b": ["2024-07-15", "2024-07-16"]}  # refit

LOAD_SCHEMA = pa.schema(
    {
        "unique_id": pa.string(),
        "ds": pa.timestamp("us"),
        "y": pa.float64(),
        "temperature": pa.float64(),
        "temperature_forecast": pa.float64(),
    }
)
SALES_SCHEMA = pa.schema(
    {"date": pa.timestamp("us")}
    | {f"{store}_{product}": pa.int64() for store in STORES for product in PRODUCTS}
)


def ar1(rng: np.random.Generator, n: int, phi: float, innovation_sd: float) -> np.ndarray:
    """Stationary-ish AR(1) noise: persistent deviations look more like real weather and load."""
    burn_in = 500  # lets the process forget its zero start
    shocks = rng.normal(0.0, innovation_sd, n + burn_in)
    # AR(1) is the shock series filtered by the impulse response phi**k; convolving keeps it
    # vectorised instead of a Python loop over every hour.
    impulse_response = phi ** np.arange(n + burn_in)
    return np.convolve(shocks, impulse_response)[burn_in : burn_in + n]


def daily_bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    # Distance on the 24-hour circle, so an evening peak does not end abruptly at midnight.
    distance = (hour - centre + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (distance / width) ** 2)


def household_profile(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    weekend = weekday >= 5
    # At weekends people sleep in and stay home: later, flatter morning peak, busier midday.
    morning = np.where(weekend, 0.35 * daily_bump(hour, 9.5, 2.0), 0.5 * daily_bump(hour, 7.5, 1.2))
    midday = np.where(weekend, 0.3, 0.1) * daily_bump(hour, 13.0, 3.0)
    evening = 0.9 * daily_bump(hour, 19.0, 2.0)
    return 0.55 + morning + midday + evening


def office_profile(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    opening = 1.0 / (1.0 + np.exp(-(hour - 7.5) / 0.6))
    closing = 1.0 / (1.0 + np.exp(-(18.0 - hour) / 0.8))
    occupancy = np.select([weekday < 5, weekday == 5], [1.0, 0.15], default=0.05)
    # Servers and ventilation keep a base load running overnight and at weekends.
    return 0.45 + 0.9 * opening * closing * occupancy


def make_load(rng: np.random.Generator) -> pd.DataFrame:
    """The history and the next day of every meter; the next day's load and measured
    temperature are left empty by the caller."""
    hours = LOAD_HOURS + NEXT_DAY_HOURS
    timestamps = pd.date_range(LOAD_START, periods=hours, freq="h")
    hour_index = np.arange(hours)
    hour = (hour_index % 24).astype(float)
    weekday = (hour_index // 24) % 7
    # Offices close and households stay home on a public holiday, as on a Sunday.
    weekday = np.where(timestamps.normalize().isin(pd.to_datetime(LOAD_HOLIDAYS)), 6, weekday)
    period_fraction = hour_index / LOAD_HOURS

    # Winter minimum early on, warming fastest towards spring, as in a temperate climate.
    seasonal_c = 0.5 + 10.0 * (1.0 - np.cos(0.5 * np.pi * period_fraction))
    diurnal_c = 3.5 * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
    weather_c = ar1(rng, hours, phi=0.985, innovation_sd=0.45)  # multi-day weather systems
    regional_c = seasonal_c + diurnal_c + weather_c

    frames: dict[str, pd.DataFrame] = {}
    for meter in METERS:
        temperature = regional_c + meter.temperature_offset_c + rng.normal(0.0, 0.2, hours)
        # The forecast error persists for hours, as a weather system comes early or late.
        forecast_error = ar1(rng, hours, phi=0.9, innovation_sd=FORECAST_ERROR_SD_C * 0.44)
        shape = (1.0 - meter.office_share) * household_profile(hour, weekday)
        shape += meter.office_share * office_profile(hour, weekday)
        heating_degrees_c = np.maximum(HEATING_BALANCE_POINT_C - temperature, 0.0)
        load = meter.base_kw * (1.0 + meter.growth_over_period * period_fraction) * shape
        load += meter.heating_kw_per_degc * heating_degrees_c
        load *= np.exp(ar1(rng, hours, phi=0.9, innovation_sd=0.025))
        load += rng.normal(0.0, 0.01 * meter.base_kw, hours)  # metering jitter
        load = np.maximum(load, 0.1 * meter.base_kw)  # a meter never reads negative load
        frames[meter.name] = pd.DataFrame(
            {
                "unique_id": meter.name,
                "ds": timestamps,
                "y": load.round(3),
                "temperature": temperature.round(1) + 0.0,  # + 0.0 turns "-0.0" into "0.0"
                "temperature_forecast": (temperature + forecast_error).round(1) + 0.0,
            }
        )

    frames["meter_04"].loc[METER_04_NAN_HOURS, "y"] = np.nan
    frames["meter_02"] = frames["meter_02"].drop(index=METER_02_DROPPED_HOURS)
    load_df = pd.concat(frames.values(), ignore_index=True)
    load_df = load_df.sort_values(["unique_id", "ds"], ignore_index=True)
    next_day = load_df["ds"] >= timestamps[LOAD_HOURS]
    load_df.loc[next_day, ["y", "temperature"]] = np.nan
    return load_df


def make_sales(rng: np.random.Generator) -> pd.DataFrame:
    dates = pd.date_range(SALES_START, periods=SALES_DAYS, freq="D")
    day_of_year = dates.day_of_year.to_numpy()
    year_fraction = np.arange(SALES_DAYS) / SALES_DAYS
    weekday_factor = SALES_WEEKDAY_FACTOR[dates.day_of_week.to_numpy()]
    days_to_christmas_eve = (dates - pd.Timestamp("2024-12-24")).days.to_numpy()
    # Christmas shopping builds over the week before, then a smaller New Year's Eve rush.
    holiday_factor = 1.0 + 0.8 * np.exp(-0.5 * (days_to_christmas_eve / 2.5) ** 2)
    holiday_factor += 0.4 * np.isin(dates.strftime("%m-%d"), ["12-30", "12-31"])

    columns: dict[str, np.ndarray] = {}
    for store, (store_size, growth) in STORES.items():
        foot_traffic = np.exp(ar1(rng, SALES_DAYS, phi=0.8, innovation_sd=0.04))
        closed = dates.isin(pd.to_datetime(CLOSED_ALL_STORES + CLOSED_ONE_STORE.get(store, [])))
        for product, (mean_units, peak_day) in PRODUCTS.items():
            yearly = 1.0 + 0.07 * np.cos(2.0 * np.pi * (day_of_year - peak_day) / SALES_DAYS)
            expected = mean_units * store_size * (1.0 + growth * year_fraction)
            expected = expected * yearly * weekday_factor * holiday_factor * foot_traffic
            # Gamma-Poisson (negative binomial): real counts are more dispersed than Poisson.
            units = rng.poisson(expected * rng.gamma(60.0, 1.0 / 60.0, SALES_DAYS))
            columns[f"{store}_{product}"] = np.where(closed, 0, units).astype(np.int64)
    return pd.DataFrame({"date": dates, **columns})


def write_csv_and_parquet(
    frame: pd.DataFrame, out_dir: Path, stem: str, date_format: str, schema: pa.Schema
) -> None:
    # Explicit line terminator so reruns are byte-identical on every platform.
    csv_path = out_dir / f"{stem}.csv"
    frame.to_csv(csv_path, index=False, date_format=date_format, lineterminator="\n")
    # A fixed schema keeps parquet types independent of the pandas version's default dtypes.
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    pq.write_table(table, out_dir / f"{stem}.parquet", compression="zstd")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help="output directory")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    args = parser.parse_args()
    # Independent streams, so changing one data set never shifts the other's random numbers.
    load_rng, sales_rng = np.random.default_rng(args.seed).spawn(2)
    args.out.mkdir(parents=True, exist_ok=True)
    load = make_load(load_rng)
    history = load[load["ds"] < pd.Timestamp(LOAD_START) + pd.Timedelta(hours=LOAD_HOURS)]
    write_csv_and_parquet(history, args.out, "load_hourly", "%Y-%m-%d %H:%M:%S", LOAD_SCHEMA)
    write_csv_and_parquet(load, args.out, "load_hourly_next_day", "%Y-%m-%d %H:%M:%S", LOAD_SCHEMA)
    write_csv_and_parquet(
        make_sales(sales_rng), args.out, "sales_daily_wide", "%Y-%m-%d", SALES_SCHEMA
    )
    print(f"wrote sample data to {args.out}")


if __name__ == "__main__":
    main()
