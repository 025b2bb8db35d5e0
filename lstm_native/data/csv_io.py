"""Reading a series from a CSV file with a header row (the standard library's csv, no pandas).

Every problem is reported with where it is: a missing file, a missing column (with the
columns there are), a non-numeric or missing value (with its line number and text), a
series shorter than needed. Lines starting with ``#`` before the header are comments.
"""
from __future__ import annotations

import csv
import io
import numbers
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ._checks import check_int

__all__ = ["load_csv"]


def load_csv(path, column, *, date_column=None, min_length: int = 1, delimiter: str = ","):
    """Load one or more numeric columns of a CSV file as a float64 series.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file: a header row of column names, then one row per time step in time
        order. Lines starting with ``#`` before the header are skipped; empty lines too.
    column : str, int, or sequence of str/int
        The column(s) to read, by header name or 0-based index. One column gives a (T,)
        series, a sequence a (T, F) one.
    date_column : str or int, optional
        A column of ISO dates (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM``
        ...) to return as well, parsed with ``numpy.datetime64``.
    min_length : int, default 1
        Fewest rows the series must have, e.g. ``lookback + horizon`` to cut one window.
    delimiter : str, default ","
        The field separator (one character).

    Returns
    -------
    values : ndarray of float64, shape (T,) or (T, F)
        The column(s).
    dates : ndarray of datetime64, shape (T,)
        Only if `date_column` is given: ``(values, dates)`` is returned.

    Raises
    ------
    TypeError
        If `path`, `column`, `date_column`, `min_length` or `delimiter` has the wrong type.
    FileNotFoundError
        If `path` does not exist (IsADirectoryError if it is a directory).
    ValueError
        If the file has no header, a column is not there (the message lists the
        available ones), a value is missing, non-numeric or not finite, a date cannot be
        parsed (with the line number and the text), or there are fewer than `min_length`
        rows.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "sales.csv")
    ...     with open(path, "w") as file:
    ...         _ = file.write("month,units,price\\n2024-01,10,2.5\\n2024-02,12,2.5\\n"
    ...                        "2024-03,9,3.0\\n")
    ...     units, months = load_csv(path, "units", date_column="month")
    ...     both = load_csv(path, ["units", "price"])
    >>> units
    array([10., 12.,  9.])
    >>> months
    array(['2024-01', '2024-02', '2024-03'], dtype='datetime64[M]')
    >>> both.shape
    (3, 2)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise TypeError(f"delimiter must be a one-character str, got {delimiter!r}")
    min_length = check_int(min_length, "min_length")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such CSV file: '{path}'")
    if path.is_dir():
        raise IsADirectoryError(f"path must be a CSV file, got the directory '{path}'")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return _read_csv_series(fh, column, date_column=date_column, min_length=min_length,
                               delimiter=delimiter, source=str(path))


def _read_csv_series(lines: Iterable[str], column, *, date_column=None, min_length: int = 1,
                    delimiter: str = ",", source: str = "<csv>"):
    """`load_csv` on an open text stream or any iterable of lines (private helper)."""
    if isinstance(lines, str):
        lines = io.StringIO(lines)
    names = _check_column_spec(column, "column")
    single = not isinstance(column, (list, tuple))
    if date_column is not None:
        _check_column_spec(date_column, "date_column", allow_sequence=False)

    lines = iter(lines)
    line_no = 0
    header_line = None
    for raw in lines:                      # skip comments and blank lines before the header
        line_no += 1
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            header_line = raw
            break
    if header_line is None:
        raise ValueError(f"{source}: the file is empty; expected a header row of column "
                         "names, then one row per time step")
    header = [h.strip() for h in next(csv.reader([header_line], delimiter=delimiter))]

    idx = [_resolve_column(c, header, "column", source) for c in names]
    date_idx = (None if date_column is None
                else _resolve_column(date_column, header, "date_column", source))

    values, dates = [], []
    header_line_no = line_no
    reader = csv.reader(lines, delimiter=delimiter)
    for row in reader:
        row_line = header_line_no + reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        vals = []
        for i in idx:
            text = row[i].strip() if i < len(row) else ""
            name = header[i]
            if not text:
                raise ValueError(f"{source}, line {row_line}: column '{name}' has no value "
                                 "(missing values are not supported: fill or drop them)")
            try:
                v = float(text)
            except ValueError:
                raise ValueError(f"{source}, line {row_line}: column '{name}' holds "
                                 f"{text!r}, which is not a number") from None
            if not np.isfinite(v):
                raise ValueError(f"{source}, line {row_line}: column '{name}' holds "
                                 f"{text!r}; only finite numbers are supported")
            vals.append(v)
        values.append(vals)
        if date_idx is not None:
            text = row[date_idx].strip() if date_idx < len(row) else ""
            try:
                dates.append(np.datetime64(text))
            except ValueError:
                raise ValueError(f"{source}, line {row_line}: date column "
                                 f"'{header[date_idx]}' holds {text!r}, which is not an ISO "
                                 "date like 1949-01 or 1949-01-31") from None
            if np.isnat(dates[-1]):
                raise ValueError(f"{source}, line {row_line}: date column "
                                 f"'{header[date_idx]}' holds {text!r}, not a date")

    if len(values) < min_length:
        raise ValueError(f"{source}: the series is too short: it has {len(values)} rows, "
                         f"and at least min_length = {min_length} are needed")
    arr = np.asarray(values, dtype=np.float64).reshape(len(values), len(idx))
    if single:
        arr = arr[:, 0]
    if date_idx is None:
        return arr
    return arr, np.array(dates)   # min_length >= 1: never empty


def _check_column_spec(column, name: str, allow_sequence: bool = True) -> list:
    what = "a column name (str) or 0-based index (int)"
    if isinstance(column, (list, tuple)) and allow_sequence:
        if not column:
            raise ValueError(f"{name} must name at least one column, got an empty sequence")
        items = list(column)
    else:
        items = [column]
    for c in items:
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (str, numbers.Integral)):
            raise TypeError(f"{name} must be {what}"
                            + (" or a list of them" if allow_sequence else "")
                            + f", got {c!r}")
    return items


def _resolve_column(c, header: list[str], name: str, source: str) -> int:
    if isinstance(c, str):
        matches = [i for i, h in enumerate(header) if h == c.strip()]
        if not matches:
            raise ValueError(f"{source}: {name} {c!r} is not in the file; the available "
                             f"columns are {header}")
        if len(matches) > 1:
            raise ValueError(f"{source}: {name} {c!r} names {len(matches)} columns "
                             f"(indices {matches}); select one by index")
        return matches[0]
    i = int(c)
    if not 0 <= i < len(header):
        raise ValueError(f"{source}: {name} index {i} is out of range: the file has "
                         f"{len(header)} columns {header} (indices 0 .. {len(header) - 1})")
    return i
