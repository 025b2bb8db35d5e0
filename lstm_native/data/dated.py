"""A series read with its dates: numpy arrays, pandas Series and DataFrame columns.

A series is a 1-D array of finite numbers with optional dates (``dates=``: datetime64
values or a pandas index), a pandas Series (its DatetimeIndex or PeriodIndex gives the
dates), or a column of a pandas DataFrame (the dates from its index or a date column).
pandas is imported only when such an object is passed: the data layer needs NumPy only.
"""
from __future__ import annotations

import numpy as np

from ._checks import as_float_values

__all__ = ["future_dates", "read_series"]


def _pandas_of(obj):
    """The pandas module when `obj` is a pandas object, else None (pandas is optional:
    imported only when one is passed)."""
    if type(obj).__module__.split(".")[0] != "pandas":
        return None
    import pandas
    return pandas


def read_series(y, dates, column, date_column):
    """(values (T,) float64, dates (T,) or None, pandas module or None) of a series `y`
    with optional `dates`, or of the `column` of a DataFrame (its dates from `dates`, its
    index, or `date_column`, by default its first datetime column)."""
    pd = _pandas_of(y)
    if pd is not None and isinstance(y, pd.DataFrame):
        frame = y
        if date_column is not None:
            if date_column not in frame.columns:
                raise KeyError(f"date_column {date_column!r} is not a column of y (columns: "
                               f"{', '.join(map(str, frame.columns))})")
            if dates is None:
                dates = frame[date_column]
        elif dates is None and not _is_dated_index(pd, frame.index):
            found = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
            if found:
                date_column, dates = found[0], frame[found[0]]
        if column is None:
            others = [c for c in frame.columns if c != date_column]
            if len(others) != 1:
                raise ValueError(f"column must name the column of y to forecast: y has "
                                 f"{len(others)} besides the dates "
                                 f"({', '.join(map(str, others))})")
            column = others[0]
        if column not in frame.columns:
            raise KeyError(f"column {column!r} is not a column of y (columns: "
                           f"{', '.join(map(str, frame.columns))})")
        y = frame[column]
        if dates is None and _is_dated_index(pd, frame.index):
            dates = frame.index
    elif column is not None or date_column is not None:
        raise TypeError("column and date_column apply to a pandas DataFrame, got y of type "
                        f"{type(y).__name__}")
    if pd is not None and isinstance(y, pd.Series):
        if dates is None and _is_dated_index(pd, y.index):
            dates = y.index
        y = y.to_numpy()
    elif pd is not None:
        raise TypeError(f"y must be a pandas Series or DataFrame, or a 1-D array, got "
                        f"{type(y).__name__}")
    values = as_float_values(y, "y", "(T,)")
    if values.ndim != 1:
        raise ValueError(f"y must be one series, 1-D (T,), got shape {values.shape}")
    values = np.ascontiguousarray(values, np.float64)
    if dates is not None:
        dates = _read_dates(dates, len(values))
    return values, dates, pd


def _is_dated_index(pd, index) -> bool:
    return isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex))


def _read_dates(dates, n: int):
    """`dates` as a pandas index (pandas input) or a datetime64 array, one per value."""
    pd = _pandas_of(dates)
    if pd is not None:
        dates = dates if _is_dated_index(pd, dates) else pd.DatetimeIndex(dates)
    else:
        dates = np.asarray(dates)
        if not np.issubdtype(dates.dtype, np.datetime64):
            raise TypeError(f"dates must be datetime64 values, got dtype {dates.dtype}")
    if dates.ndim != 1 or len(dates) != n:
        raise ValueError(f"dates must hold one date per value of y ({n}), got shape "
                         f"{dates.shape}")
    return dates


def future_dates(dates, steps: int):
    """The `steps` dates after the last of `dates`: by its frequency for a pandas index
    that has one, else by the last step."""
    pd = _pandas_of(dates)
    if pd is not None:
        if isinstance(dates, pd.PeriodIndex):
            return pd.period_range(dates[-1] + 1, periods=steps, freq=dates.freq)
        freq = dates.freq or (pd.DatetimeIndex(dates, freq="infer").freq
                              if len(dates) >= 3 else None)
        if freq is not None:
            return pd.date_range(dates[-1], periods=steps + 1, freq=freq)[1:]
        return pd.DatetimeIndex([dates[-1] + (dates[-1] - dates[-2]) * (k + 1)
                                 for k in range(steps)])
    step = dates[-1] - dates[-2]
    return np.array([dates[-1] + step * (k + 1) for k in range(steps)])
