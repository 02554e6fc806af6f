"""Public holidays as features: for each step, the share of its days that are holidays,
bridge days, or the days just before or after a holiday.

Holidays come from the `holidays` package (PyPI): it is maintained, works offline,
covers 150+ countries with their subdivisions (states, provinces, regions) and computes
each year's dates by rule (Easter, lunar calendars, "observed" substitutes), so nothing
is downloaded and any year can be asked for. It is imported inside functions only, so
``import rnncast`` and the CLI's start-up do not pay for it.

A country is an ISO 3166-1 alpha-2 code, optionally with a subdivision after a dash
("US-CA", "DE-BY"). Days are numbered as numpy datetime64[D] does (days since 1970-01-01);
the work per row is a few array lookups, so millions of rows cost little.
"""

from __future__ import annotations

import difflib

import numpy as np

from rnncast.errors import ConfigError

HOLIDAY_FEATURES: tuple[str, ...] = ("holiday", "bridge_day", "before_holiday", "after_holiday")

_NS_PER_DAY = 86_400 * 1_000_000_000


def _suggest(bad: str, valid: list[str]) -> list[str]:
    """Up to three valid names close to `bad`, closest first (case-insensitive)."""
    # Not difflib.get_close_matches: its 0.6 cutoff finds nothing for a one-letter
    # typo in a two-letter code ("DR" vs "DE" scores 0.5), and it breaks ties in
    # reverse alphabetical order; a shared first letter is the better tie-break.
    scored = []
    for name in valid:
        ratio = difflib.SequenceMatcher(None, bad.casefold(), name.casefold()).ratio()
        if ratio >= 0.5:
            scored.append((-ratio, name[:1].casefold() != bad[:1].casefold(), name))
    return [name for *_, name in sorted(scored)[:3]]


def check_country(code: str, where: str) -> str:
    """Normalise and validate one code ("de-by" -> "DE-BY"); return the normalised code.

    The country part is upper-cased; the subdivision is matched case-insensitively and
    spelled as the library spells it ("FR-zone a" -> "FR-Zone A"). `where` starts the
    message (an option or a file, column and series). Raises ConfigError if unknown.
    """
    import holidays

    country, dash, subdivision = code.strip().partition("-")
    country = country.strip().upper()
    # Aliases ("UK", "DEU") are left out so each country has one name, and one feature name.
    supported = holidays.list_supported_countries(include_aliases=False)
    if country not in supported:
        if country in holidays.list_supported_countries(include_aliases=True):
            close = [holidays.country_holidays(country).country]
        else:
            close = _suggest(country, list(supported))
        hint = f"did you mean {', '.join(close)}?" if close else "use an ISO 3166-1 alpha-2 code"
        raise ConfigError(f"{where}: unknown country {code.strip()!r}; {hint}")
    if not dash:
        return country
    subdivisions = {name.casefold(): name for name in supported[country]}
    subdivision = subdivision.strip()
    if subdivision.casefold() in subdivisions:
        return f"{country}-{subdivisions[subdivision.casefold()]}"
    if not subdivisions:
        raise ConfigError(
            f"{where}: {country} has no subdivisions, got {code.strip()!r}; use {country}"
        )
    close = [f"{country}-{name}" for name in _suggest(subdivision, supported[country])]
    listed = ", ".join(f"{country}-{name}" for name in supported[country][:5])
    hint = f"did you mean {', '.join(close)}?" if close else f"valid ones include {listed}"
    raise ConfigError(f"{where}: unknown subdivision {code.strip()!r}; {hint}")


def parse_countries(text: str) -> tuple[str, ...]:
    """'DE,fr, US-CA' -> ('DE', 'FR', 'US-CA'), each code checked by check_country.

    Raises ConfigError (naming --holidays and the code) for an unknown code, an empty
    name or a code given twice.
    """
    if not text.strip():
        raise ConfigError("--holidays: no country code given; use e.g. DE or DE-BY,FR")
    codes: list[str] = []
    for part in text.split(","):
        if not part.strip():
            raise ConfigError(
                f"--holidays: empty country code in {text!r}; separate codes by commas, e.g. DE,FR"
            )
        code = check_country(part, "--holidays")
        if code in codes:
            raise ConfigError(f"--holidays: {code!r} is given twice; name each country once")
        codes.append(code)
    return tuple(codes)


def holiday_feature_names(countries: tuple[str, ...]) -> tuple[str, ...]:
    """Feature names, one block of HOLIDAY_FEATURES per country ('holiday_DE', ...);
    () gives HOLIDAY_FEATURES themselves, for a country set per series by a column."""
    if not countries:
        return HOLIDAY_FEATURES
    return tuple(f"{name}_{code}" for code in countries for name in HOLIDAY_FEATURES)


def _day_flags(country: str, first: int, last: int) -> np.ndarray:
    """(last - first + 1, 4) bool flags of HOLIDAY_FEATURES for days first..last."""
    import holidays

    country, _, subdivision = country.partition("-")
    # One day of margin on each side: a day's flags depend on its neighbours.
    days = np.arange(first - 1, last + 2)  # (L + 2,) day numbers
    years = days[[0, -1]].astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    # A year more on each side costs little and guards against rules that list a date
    # under a neighbouring year: observed days cross New Year (the US observed New
    # Year's Day 2022 on Friday 2021-12-31).
    calendar = holidays.country_holidays(
        country, subdiv=subdivision or None, years=range(int(years[0]) - 1, int(years[1]) + 2)
    )
    dates = np.array(sorted(calendar), dtype="datetime64[D]").astype(np.int64)
    holiday = np.isin(days, dates)
    # The library's weekend (Friday and Saturday in Israel or Saudi Arabia, Saturday and
    # Sunday in most countries), less the weekend days it says are worked (Russia, China).
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0 as in the library
    worked = np.array(sorted(calendar.weekend_workdays), dtype="datetime64[D]").astype(np.int64)
    weekend = np.isin(weekday, sorted(calendar.weekend)) & ~np.isin(days, worked)
    off = holiday | weekend
    here, before, after = slice(1, -1), slice(None, -2), slice(2, None)
    bridge = ~off[here] & ((holiday[before] & off[after]) | (off[before] & holiday[after]))
    before_holiday = ~holiday[here] & holiday[after]
    after_holiday = ~holiday[here] & holiday[before]
    return np.stack([holiday[here], bridge, before_holiday, after_holiday], axis=1)


def holiday_features(times: np.ndarray, step_end: np.ndarray, country: str) -> np.ndarray:
    """(N, 4) float32 features of HOLIDAY_FEATURES for N steps in one country.

    times: (N,) int64 ns since the epoch, wall-clock start of each step; step_end: (N,)
    int64 ns, the start of the next step. Each feature is the share of the calendar days
    the step touches ([times, step_end), at least the day it starts in) that have the
    property: 0 or 1 for a sub-daily step, e.g. 1/7 for a week holding one holiday.
    A bridge day is a working day between a holiday and a day off (weekend or holiday).
    `country` is checked as by check_country (ConfigError if unknown).
    """
    country = check_country(country, "holiday_features")
    times = np.asarray(times).astype(np.int64, copy=False)
    step_end = np.asarray(step_end).astype(np.int64, copy=False)
    if times.size == 0:
        return np.zeros((0, len(HOLIDAY_FEATURES)), dtype=np.float32)
    first = times // _NS_PER_DAY  # (N,) day numbers, floored so times before 1970 work
    last = np.maximum((step_end - 1) // _NS_PER_DAY, first)  # step_end is excluded
    lo, hi = int(first.min()), int(last.max())
    flags = _day_flags(country, lo, hi)  # (L, 4)
    # Counts of flagged days before each day, so a step's count is one subtraction.
    counts = np.zeros((hi - lo + 2, len(HOLIDAY_FEATURES)), dtype=np.int64)
    np.cumsum(flags, axis=0, out=counts[1:])
    touched = counts[last - lo + 1] - counts[first - lo]  # (N, 4)
    return (touched / (last - first + 1)[:, None]).astype(np.float32)
