"""A series read with its dates: numpy arrays, pandas Series and DataFrame columns, CSV files.

A series is a 1-D array of finite numbers with optional dates (``dates=``: datetime64
values or a pandas index), a pandas Series (its DatetimeIndex or PeriodIndex gives the
dates), or a column of a pandas DataFrame (the dates from its index or a date column).
`read_csv` reads one from a CSV file with pandas: the delimiter sniffed, the date column
found and parsed. pandas is imported only when such an object is passed or a file read:
the data layer needs NumPy only.
"""
from __future__ import annotations

import csv
import io
import os
import re
import warnings
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ._checks import as_float_values, check_int
from .csv_io import _check_column_spec, _resolve_column

if TYPE_CHECKING:
    import pandas

__all__ = ["MAX_CSV_BYTES", "MAX_CSV_COLUMNS", "MAX_CSV_LINES", "CSVSeries", "future_dates",
           "read_csv", "read_series"]


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


# -- CSV files ---------------------------------------------------------------------------

#: The largest file `read_csv` reads by default, 256 MiB (some ten million rows of a date
#: and a value): a bigger one is refused before it is read. Pass ``max_bytes=`` for more.
MAX_CSV_BYTES = 256 << 20
#: The most lines and the most columns of a file `read_csv` reads: they bound the memory
#: (some 300 bytes a row of a date and a value, as text and numbers) and the time (two
#: seconds a million rows) that a file can take.
MAX_CSV_LINES = 10_000_000
MAX_CSV_COLUMNS = 10_000

_DELIMITERS = (",", ";", "\t", "|")   # sniffed in this order of preference on a tie
_SNIFF_LINES = 20
# The texts that mean "no value" (compared in lower case): pandas' usual ones and "?".
_MISSING = frozenset({"", "na", "n/a", "nan", "-nan", "nat", "null", "none", "<na>", "#n/a",
                      "?"})
# A header naming a date column: it is tried first, and its integers may be dates.
_DATE_NAME = re.compile(r"date|time|month|year|period|week|quarter|datum"
                        r"|(?<![a-z])(ds|day)(?![a-z])")
_QUARTER = re.compile(r"^(\d{4})\s*-?\s*[Qq]([1-4])$")
_DOTTED_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{2,4}")   # 31.01.2020: the day first
# The integers of a column whose name says it holds dates: years, year-months, days.
_DIGIT_DATE_FORMATS = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d"}


class CSVSeries(NamedTuple):
    """A series read from a CSV file by `read_csv`.

    Attributes
    ----------
    values : ndarray of float64, shape (T,)
        The column's values, oldest first.
    dates : pandas.DatetimeIndex of length T, or None
        The dates (named after their column, ``freq`` inferred where they are regular), or
        None when the file has no date column.
    column : str
        The header of the column read.
    date_column : str or None
        The header of the date column.
    delimiter : str
        The field separator: ``","``, ``";"``, tab or ``"|"`` when sniffed.
    decimal : str
        ``"."``, or ``","`` for decimal commas (``1,5``).
    """

    values: np.ndarray
    dates: pandas.DatetimeIndex | None
    column: str
    date_column: str | None
    delimiter: str
    decimal: str


def read_csv(path, column=None, *, date_column=None, min_length: int = 1, delimiter=None,
             max_bytes: int = MAX_CSV_BYTES) -> CSVSeries:
    """Read one numeric column of a CSV file, with its dates, using pandas.

    Parameters
    ----------
    path : str or os.PathLike
        A UTF-8 CSV file (a byte-order mark is ignored): a header row of column names, then
        one row per time step. Lines starting with ``#`` before the header are comments;
        empty lines are skipped.
    column : str or int, optional
        The column of values: a header name, or a 0-based index (an int, or a str of
        digits as a command line gives it; a header of that very name wins). By default
        the last column that is not the date column.
    date_column : str or int, optional
        The column of dates, named or numbered as `column`. By default the first column
        whose values all parse as dates, trying first the columns whose names say date,
        time, month, year, period, week, quarter, day or ds: in the format pandas infers
        from the first value (``2020-01``, ``2020-01-31 10:00``, ``01/31/2020``; the day
        first in ``31.01.2020``, and in ``13/01/2020`` after ``01/01/2020``), or quarters
        (``2020Q1``). Only in a column so named, or given as `date_column`, are
        free-form dates (``Jan 2020``) and integers read as dates, the integers as years
        (``1949``), ``YYYYMM`` or ``YYYYMMDD``: a column 1, 2, 3... is no dates.
    min_length : int, default 1
        Fewest rows the series must have, e.g. ``lookback + horizon``.
    delimiter : str, optional
        The field separator (one character). By default sniffed among ``,`` ``;`` tab
        ``|``: the one that splits the header and the first rows into the same number
        (more than one) of fields.
    max_bytes : int, default MAX_CSV_BYTES (256 MiB)
        A larger file is refused before it is read.

    Returns
    -------
    CSVSeries
        ``(values, dates, column, date_column, delimiter, decimal)``. A file with ``;`` or
        tab between fields and decimal commas in the column (``1,5``, and no ``.``) reads
        them as ``1.5``. A file newest first (dates in descending order throughout) is
        returned oldest first.

    Raises
    ------
    ImportError
        If pandas is not installed.
    TypeError
        If an argument has the wrong type.
    FileNotFoundError
        If `path` does not exist (IsADirectoryError if it is a directory).
    ValueError
        If the file is not UTF-8 text, is larger than `max_bytes`, has more lines than
        MAX_CSV_LINES (10 million) or columns than MAX_CSV_COLUMNS, has no header, is not
        well-formed CSV, or lacks a column asked for (the message lists those there are);
        if a value is missing (empty, NA, NaN, ?), not a number, or not finite, or a date
        does not parse, repeats or is out of order (with the line, counted from 1 with the
        header and comments, and the text); or if there are fewer than `min_length` rows.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "sales.csv")
    ...     _ = path.write_text("month;units\\n2024-01;10,5\\n2024-02;12\\n2024-03;9,25\\n")
    ...     sales = read_csv(path)
    >>> sales.values
    array([10.5 , 12.  ,  9.25])
    >>> sales.dates.freqstr, sales.column, sales.date_column, sales.delimiter
    ('MS', 'units', 'month', ';')
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if column is not None:
        _check_column_spec(column, "column", allow_sequence=False)
    if date_column is not None:
        _check_column_spec(date_column, "date_column", allow_sequence=False)
    min_length = check_int(min_length, "min_length")
    max_bytes = check_int(max_bytes, "max_bytes")
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1
                                  or delimiter in "\r\n\"#"):
        raise TypeError(f"delimiter must be None (sniffed) or a one-character str other "
                        f"than a quote, # or a line break, got {delimiter!r}")
    pd = _import_pandas()
    source = str(path)
    text = _read_text(Path(path), max_bytes, source)
    table = _Table(pd, text, delimiter, source)
    value_at = None if column is None else table.index_of(column, "column")
    if date_column is not None:
        date_at = table.index_of(date_column, "date_column")
        if date_at == value_at:
            raise ValueError(f"{source}: column and date_column both name the column "
                             f"{table.header[date_at]!r}")
    else:
        date_at = table.find_dates(skip=value_at)
    if value_at is None:
        others = [j for j in range(len(table.header)) if j != date_at]
        if not others:
            raise ValueError(f"{source}: no column of values: the only column "
                             f"{table.header[date_at]!r} holds the dates")
        value_at = others[-1]
    values, decimal = table.numbers(value_at)
    if len(values) < min_length:
        raise ValueError(f"{source}: the series is too short: it has {len(values)} rows, "
                         f"and at least min_length = {min_length} are needed")
    dates = None if date_at is None else table.dates(date_at)
    if dates is not None and len(dates) > 1 and dates[-1] < dates[0]:   # newest first
        values, dates = values[::-1].copy(), dates[::-1]
    if dates is not None:
        dates = pd.DatetimeIndex(dates, freq="infer" if len(dates) >= 3 else None)
    return CSVSeries(values, dates, table.header[value_at],
                     None if date_at is None else table.header[date_at], table.delimiter,
                     decimal)


def _import_pandas():
    try:
        import pandas
    except ImportError as e:
        raise ImportError(f"reading CSV files needs pandas ({e}): "
                          "pip install 'lstm_native[forecasting]'") from e
    return pandas


def _read_text(path: Path, max_bytes: int, source: str) -> str:
    """The file's text, line breaks made "\\n", or an error saying why it is not a text
    file that can be read."""
    if not path.exists():
        raise FileNotFoundError(f"path: no such CSV file: '{path}'")
    if path.is_dir():
        raise IsADirectoryError(f"path must be a CSV file, got the directory '{path}'")
    if not path.is_file():   # a device or a pipe could be endless or block
        raise ValueError(f"path must be a regular CSV file, got '{path}'")
    with open(path, "rb") as fh:
        raw = fh.read(max_bytes + 1)   # bounded even if the file grows while read
    if len(raw) > max_bytes:
        raise ValueError(f"{source}: the file is larger than max_bytes = {max_bytes} bytes; "
                         "pass a larger max_bytes to read it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{source}, line {line}: the file is not UTF-8 text (byte "
                         f"0x{raw[e.start]:02x}); save it as UTF-8") from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValueError(f"{source}, line {line}: a NUL character: this is not a CSV text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sniff(lines: list[str]) -> str:
    """The delimiter that splits the header and the rows after it into the same number of
    fields, the most if several do; else the one giving the header the most fields."""
    sample = "".join(lines)
    counts = {}
    for d in _DELIMITERS:
        try:
            counts[d] = [len(r) for r in csv.reader(io.StringIO(sample), delimiter=d)
                         if any(f.strip() for f in r)] or [0]   # [0]: delimiters only
        except csv.Error:
            counts[d] = [0]
    regular = [d for d in _DELIMITERS if len(set(counts[d])) == 1 and counts[d][0] > 1]
    if regular:
        return max(regular, key=lambda d: counts[d][0])   # max keeps the first on a tie
    return max(_DELIMITERS, key=lambda d: counts[d][0])


class _Table:
    """The cells of a CSV file as text (pandas), with the line each row starts on."""

    def __init__(self, pd, text: str, delimiter, source: str):
        self.pd, self.source = pd, source
        n_lines = text.count("\n") + 1
        if n_lines > MAX_CSV_LINES:   # counted before any line is made a str of its own
            raise ValueError(f"{source}: the file has {n_lines} lines; at most "
                             f"{MAX_CSV_LINES} are read")
        lines = io.StringIO(text)
        self.header_line, offset = 0, 0
        for line in lines:   # comments and blank lines before the header
            self.header_line += 1
            if line.strip() and not line.lstrip().startswith("#"):
                break
            offset += len(line)
        else:
            raise ValueError(f"{source}: the file is empty; expected a header row of column "
                             "names, then one row per time step")
        body = text[offset:]
        self.delimiter = delimiter or _sniff(list(islice(io.StringIO(body), _SNIFF_LINES + 1)))
        n_columns = line.count(self.delimiter) + 1   # or fewer, with quotes
        if n_columns > MAX_CSV_COLUMNS:
            raise ValueError(f"{source}, line {self.header_line}: the header has {n_columns} "
                             f"columns; at most {MAX_CSV_COLUMNS} are read")
        try:
            self.frame = self._parse(body)
        except ValueError as e:   # pandas' ParserError is one
            message = str(e).strip().replace("Error tokenizing data. C error: ", "")
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
            if not m:
                raise ValueError(f"{source}: not a well-formed CSV file ({message})") from None
            self.frame = self._parse(body, rows=int(m[2]) - 1)   # the rows before it
            raise ValueError(f"{source}, line {self.line(len(self.frame))}: {m[3]} fields, "
                             f"where the header has {m[1]}") from None
        empty = self.frame.apply(lambda c: c.str.strip().eq("")).to_numpy()
        # a delimiter ending every line makes a last column without name or values
        while self.frame.shape[1] > 1 and empty[:, -1].all():
            self.frame, empty = self.frame.iloc[:, :-1], empty[:, :-1]
        self.header = [h.strip() for h in self.frame.iloc[0]]
        self.rows = np.flatnonzero(~empty[1:].all(axis=1)) + 1   # positions of data rows

    def _parse(self, body: str, rows=None):
        """The rows of `body` (all, or the first `rows`) as str cells, the header the first
        and blank lines kept, so that positions map to lines."""
        return self.pd.read_csv(io.StringIO(body), sep=self.delimiter, header=None,
                                dtype=str, na_filter=False, skip_blank_lines=False,
                                index_col=False, nrows=rows, engine="c")

    def line(self, row: int) -> int:
        """The line of the file (from 1) that the row at `row` of the frame starts on:
        quoted fields may hold line breaks."""
        breaks = self.frame.iloc[:row].apply(lambda c: c.str.count("\n")).to_numpy().sum()
        return self.header_line + row + int(breaks)

    def where(self, j: int, at: int, what: str = "column") -> str:
        """``'file, line N: column 'name''`` for the `at`-th data row of column `j`."""
        line = self.line(self.rows[at])
        return f"{self.source}, line {line}: {what} {_shown(self.header[j])}"

    def texts(self, j: int):
        """The data cells of column `j`, stripped."""
        return self.frame.iloc[self.rows, j].str.strip()

    def index_of(self, key, name: str) -> int:
        """The index of the column `key` names: a header, else digits as an index."""
        if isinstance(key, str) and key.strip() not in self.header and key.strip().isdigit():
            key = int(key)
        return _resolve_column(key, self.header, name, self.source)

    def numbers(self, j: int):
        """(values (T,) float64, decimal mark) of column `j`, or an error at the first
        missing, non-numeric or infinite value."""
        texts = self.texts(j)
        self._check_present(texts, j, "column")
        decimal = ("," if self.delimiter != "," and texts.str.contains(",", regex=False).any()
                   and not texts.str.contains(".", regex=False).any() else ".")
        if decimal == ",":
            texts = texts.str.replace(",", ".")
        numbers = self.pd.to_numeric(texts, errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(values)
        if bad.any():
            at = int(np.argmax(bad))
            text = texts.iloc[at]
            raise ValueError(f"{self.where(j, at)} holds {_shown(text)}" + (
                ", which is not a number" if np.isnan(values[at]) else
                "; only finite numbers are supported"))
        return values, decimal

    def find_dates(self, skip):
        """The index of the first column (names saying dates first) whose values all
        parse as dates, or None."""
        named = {j: bool(_DATE_NAME.search(h.lower())) for j, h in enumerate(self.header)
                 if j != skip}
        for j in sorted(named, key=lambda j: not named[j]):
            texts = self.texts(j)
            present = texts[~_missing(texts)]
            # the first value alone rules most columns out without parsing them whole
            if (len(present) and _parse_dates(self.pd, present.iloc[:1], named[j]).notna().all()
                    and _parse_dates(self.pd, present, named[j]).notna().all()):
                return j
        return None

    def dates(self, j: int):
        """Column `j` as a DatetimeIndex in time order, or an error at the first date
        missing, not parsed, repeated or out of order."""
        texts = self.texts(j)
        self._check_present(texts, j, "date column")
        dates = self.pd.DatetimeIndex(_parse_dates(self.pd, texts, True), name=self.header[j])
        if dates.isna().any():
            at = int(np.argmax(dates.isna()))
            raise ValueError(f"{self.where(j, at, 'date column')} holds "
                             f"{_shown(texts.iloc[at])}, which is not a date")
        repeated = dates.duplicated()
        if repeated.any():
            at = int(np.argmax(repeated))
            first = int(np.argmax(dates == dates[at]))
            raise ValueError(f"{self.where(j, at, 'date column')} repeats the date "
                             f"{_shown(texts.iloc[at])} of line {self.line(self.rows[first])}: "
                             "one row per date is needed")
        steps = np.diff(dates.asi8) * (1 if len(dates) < 2 or dates[-1] > dates[0] else -1)
        if (steps < 0).any():   # against the direction from the first date to the last
            at = int(np.argmax(steps < 0)) + 1
            raise ValueError(f"{self.where(j, at, 'date column')} holds "
                             f"{_shown(texts.iloc[at])}, out of order after "
                             f"{_shown(texts.iloc[at - 1])}: the rows must be in time order "
                             "(oldest first, or newest first throughout)")
        return dates

    def _check_present(self, texts, j: int, what: str):
        missing = _missing(texts).to_numpy()
        if missing.any():
            at = int(np.argmax(missing))
            text = texts.iloc[at]
            raise ValueError(f"{self.where(j, at, what)} has no value"
                             + (f" ({_shown(text)})" if text else "")
                             + " (missing values are not supported: fill or drop them)")


def _missing(texts):
    """Where `texts` (stripped) mean no value: empty, NA, NaN, ?..."""
    return texts.str.lower().isin(_MISSING)


def _shown(text: str) -> str:
    """`text` quoted for a message, cut short if long (a file's cell may be megabytes)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _parse_dates(pd, texts, said_dates: bool):
    """`texts` (a pandas Series of str) as datetime64 values, NaT where not a date.
    `said_dates`: the column is named or given as dates, so that its integers and its
    free-form text may be dates."""
    first = texts.iloc[0]
    if _QUARTER.match(first):
        texts = texts.str.replace(_QUARTER, lambda m: f"{m[1]}-{3 * int(m[2]) - 2:02d}-01",
                                  regex=True)
        return pd.to_datetime(texts, format="%Y-%m-%d", errors="coerce")
    if first.isascii() and first.isdigit():
        layout = _DIGIT_DATE_FORMATS.get(len(first)) if said_dates else None
        if layout is None:
            return _no_dates(pd, texts)
        dates = pd.to_datetime(texts, format=layout, errors="coerce")
        return dates.where(texts.str.len() == len(first))   # 19491 is not a month
    try:
        float(first)
        return _no_dates(pd, texts)   # a number
    except ValueError:
        pass
    # dates in a format pandas infers from the first; free-form text (Jan 2020) only in
    # a column named or given as dates, as dateutil reads 1,5 or 12:30 as dates too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # pandas warns when the guess ignores dayfirst
        guesses = [pd.tseries.api.guess_datetime_format(first, dayfirst=day_first)
                   for day_first in (False, True)]
    if _DOTTED_DATE.fullmatch(first):   # 01.02.2020 is the 1st of February
        guesses.reverse()
    if guesses[0] is None and not said_dates:
        return _no_dates(pd, texts)
    dates = _to_datetime(pd, texts, guesses[0])
    if dates.isna().any() and guesses[1] not in (None, guesses[0]):   # 13/02 after 01/02
        other = _to_datetime(pd, texts, guesses[1])
        if other.notna().all():
            dates = other
    return dates


def _no_dates(pd, texts):
    return pd.Series(pd.NaT, index=texts.index, dtype="datetime64[ns]")


def _to_datetime(pd, texts, layout):
    """`texts` as dates in the strftime `layout`, or free-form (dateutil) if it is None;
    NaT where not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # pandas warns when it parses value by value
        try:
            return pd.to_datetime(texts, format=layout, errors="coerce")
        except ValueError:   # offsets that change (summer time): in UTC
            return pd.to_datetime(texts, format=layout, errors="coerce", utc=True)
