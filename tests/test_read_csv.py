"""lstm_native.data.read_csv: a CSV file's series and dates, read with pandas."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_native.baselines import season_of
from lstm_native.data import CSVSeries, read_csv
from lstm_native.data.dated import future_dates

try:
    import pandas as pd
except ImportError:   # read_csv needs it; the tests of its absence and of the checks run
    pd = None


@pytest.fixture(autouse=True)
def _skip_without_pandas(request):
    if pd is None and request.function.__name__ not in PANDAS_FREE:
        pytest.skip("read_csv reads with pandas")


def write(tmp_path, text, name="series.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def monthly(n, sep=",", start="2020-01"):
    months = pd.period_range(start, periods=n, freq="M")
    return "month" + sep + "sales\n" + "".join(f"{m}{sep}{10 + k}\n"
                                               for k, m in enumerate(months))


# -- delimiters and number formats --------------------------------------------------------

@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, sep):
    got = read_csv(write(tmp_path, monthly(5, sep)))
    assert isinstance(got, CSVSeries)
    assert got.delimiter == sep and got.decimal == "."
    np.testing.assert_array_equal(got.values, [10, 11, 12, 13, 14])
    assert got.values.dtype == np.float64
    assert got.column == "sales" and got.date_column == "month"
    assert list(got.dates.strftime("%Y-%m")) == ["2020-01", "2020-02", "2020-03", "2020-04",
                                                 "2020-05"]
    assert got.dates.freqstr == "MS" and got.dates.name == "month"


def test_semicolon_with_decimal_commas(tmp_path):
    got = read_csv(write(tmp_path, "Datum;Umsatz;Preis\n31.01.2020;1,5;2\n01.02.2020;2;3,25\n"
                                   "02.02.2020;-0,75;4\n"), "Umsatz")
    assert got.delimiter == ";" and got.decimal == ","
    np.testing.assert_array_equal(got.values, [1.5, 2.0, -0.75])
    # dotted dates read the day first: 01.02.2020 is the first of February
    assert list(got.dates.strftime("%Y-%m-%d")) == ["2020-01-31", "2020-02-01", "2020-02-02"]
    assert read_csv(write(tmp_path, "Datum;Umsatz;Preis\n31.01.2020;1,5;2\n01.02.2020;2;3,25\n"
                                    "02.02.2020;-0,75;4\n")).values[1] == 3.25


def test_tab_with_decimal_commas(tmp_path):
    got = read_csv(write(tmp_path, "t\tvalue\n1\t0,5\n2\t1,5\n"))
    assert got.delimiter == "\t" and got.decimal == ","
    np.testing.assert_array_equal(got.values, [0.5, 1.5])


def test_comma_in_a_comma_file_is_no_decimal_mark(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: column 'v' holds '1,5', which is not a "
                                         r"number"):
        read_csv(write(tmp_path, 'v\n"1,5"\n'))


def test_dots_and_commas_together_are_not_decimal_commas(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: column 'v' holds '1\.234,5'"):
        read_csv(write(tmp_path, "t;v\n1;1.234,5\n"))


def test_delimiter_given(tmp_path):
    # commas and semicolons split each line in two: sniffing prefers the commas
    path = write(tmp_path, "a,x;b\n1,2;3\n4,5;6\n")
    with pytest.raises(ValueError, match=r"column 'x;b' holds '2;3', which is not a number"):
        read_csv(path)
    got = read_csv(path, delimiter=";")
    assert got.delimiter == ";" and got.column == "b" and got.decimal == "."
    np.testing.assert_array_equal(got.values, [3, 6])


def test_a_delimiter_ending_every_line(tmp_path):
    got = read_csv(write(tmp_path, "date;v;\n2020-01-01;1,5;\n2020-01-02;2;\n"))
    assert got.column == "v" and got.delimiter == ";"
    np.testing.assert_array_equal(got.values, [1.5, 2])


def test_one_column_and_quoted_fields(tmp_path):
    np.testing.assert_array_equal(read_csv(write(tmp_path, "v\n1\n2\n")).values, [1, 2])
    got = read_csv(write(tmp_path, 'name,v\n"a, b",1\n"c",2\n'))
    assert got.delimiter == "," and got.column == "v"


def test_comments_bom_blank_lines_and_crlf(tmp_path):
    text = "\ufeff# exported 2024\n#  by hand\n\nmonth,sales\r\n2020-01,1\r\n\r\n2020-02,2\r\n"
    got = read_csv(write(tmp_path, text))
    np.testing.assert_array_equal(got.values, [1, 2])
    assert got.column == "sales" and got.date_column == "month"


# -- columns ------------------------------------------------------------------------------

def test_column_by_name_index_and_digits(tmp_path):
    path = write(tmp_path, "date,a,b,c\n2020-01-01,1,2,3\n2020-01-02,4,5,6\n")
    assert read_csv(path).column == "c"                  # the last one by default
    assert read_csv(path, "a").column == "a"
    assert read_csv(path, " a ").column == "a"
    assert read_csv(path, 2).column == "b"
    assert read_csv(path, "2").column == "b"              # digits, as a command line gives
    np.testing.assert_array_equal(read_csv(path, "2").values, [2, 5])


def test_a_header_named_by_digits_wins_over_the_index(tmp_path):
    path = write(tmp_path, "x,2,y\n1,2,3\n4,5,6\n")
    assert read_csv(path, "2").column == "2"
    np.testing.assert_array_equal(read_csv(path, "2").values, [2, 5])
    assert read_csv(path, 2).column == "y"


def test_default_column_skips_a_date_column_last(tmp_path):
    got = read_csv(write(tmp_path, "sales,date\n1,2020-01-01\n2,2020-01-02\n"))
    assert got.column == "sales" and got.date_column == "date"


def test_missing_column_lists_the_columns(tmp_path):
    path = write(tmp_path, "date,a,b\n2020-01-01,1,2\n")
    with pytest.raises(ValueError, match=r"column 'z' is not in the file; the available "
                                         r"columns are \['date', 'a', 'b'\]"):
        read_csv(path, "z")
    with pytest.raises(ValueError, match=r"column index 7 is out of range: the file has 3 "
                                         r"columns"):
        read_csv(path, "7")
    with pytest.raises(ValueError, match=r"date_column 'when' is not in the file"):
        read_csv(path, date_column="when")
    with pytest.raises(ValueError, match=r"column and date_column both name the column "
                                         r"'date'"):
        read_csv(path, "date", date_column=0)


def test_only_a_date_column(tmp_path):
    with pytest.raises(ValueError, match="no column of values: the only column 'date' holds "
                                         "the dates"):
        read_csv(write(tmp_path, "date\n2020-01-01\n2020-01-02\n"))


def test_repeated_header_names(tmp_path):
    path = write(tmp_path, "v,v\n1,2\n")
    with pytest.raises(ValueError, match=r"column 'v' names 2 columns"):
        read_csv(path, "v")
    np.testing.assert_array_equal(read_csv(path, 0).values, [1])


# -- dates --------------------------------------------------------------------------------

def test_date_found_by_content_when_not_named(tmp_path):
    got = read_csv(write(tmp_path, "when,v\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n"))
    assert got.date_column == "when" and got.dates.freqstr == "D"


def test_date_named_column_is_preferred(tmp_path):
    text = "opened,Date,v\n2019-05-01,2020-01-01,1\n2019-05-02,2020-02-01,2\n"
    assert read_csv(write(tmp_path, text)).date_column == "Date"


@pytest.mark.parametrize("text", [
    "t,v\n1,5\n2,6\n3,7\n",                       # a counter
    "sales,v\n1949,1\n1950,2\n1951,3\n",          # years, but a name that does not say so
    "time,v\n1,5\n2,6\n3,7\n",                    # named time, but a counter
    "id,v\nx1,5\nx2,6\n",                         # text, not dates
    "t,v\n1.5,1\n2.5,2\n",                        # fractions
])
def test_numbers_and_text_are_not_dates(tmp_path, text):
    got = read_csv(write(tmp_path, text))
    assert got.dates is None and got.date_column is None and got.column == "v"


def test_years_in_a_year_column(tmp_path):
    got = read_csv(write(tmp_path, "Year,population\n1949,1\n1950,2\n1951,3\n"))
    assert got.date_column == "Year"
    assert list(got.dates.year) == [1949, 1950, 1951]
    assert season_of(got.dates) == 1
    assert list(future_dates(got.dates, 2).year) == [1952, 1953]


@pytest.mark.parametrize("text, first", [
    ("month,v\n202001,1\n202002,2\n", "2020-02-01"),
    ("day,v\n20200131,1\n20200201,2\n", "2020-02-01"),
])
def test_compact_digit_dates_in_a_date_column(tmp_path, text, first):
    assert str(read_csv(write(tmp_path, text)).dates[1].date()) == first


def test_date_column_given(tmp_path):
    path = write(tmp_path, "a,b,v\n2020-01-01,2021-01-01,1\n2020-01-02,2021-01-02,2\n")
    assert read_csv(path).date_column == "a"
    assert read_csv(path, date_column="b").dates[0].year == 2021
    assert read_csv(path, date_column=1).date_column == "b"
    assert read_csv(path, date_column="1").date_column == "b"
    # given, the years of a column whose name does not say so are dates
    got = read_csv(write(tmp_path, "y,v\n1949,1\n1950,2\n"), date_column="y")
    assert list(got.dates.year) == [1949, 1950]


def test_date_column_given_that_holds_no_dates(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: date column 't' holds '1', which is not a "
                                         r"date"):
        read_csv(write(tmp_path, "t,v\n1,5\n2,6\n"), date_column="t")


def test_slashed_dates_read_the_day_first_when_the_month_cannot_be(tmp_path):
    got = read_csv(write(tmp_path, "date,v\n01/02/2020,1\n13/02/2020,2\n"))
    assert list(got.dates.strftime("%Y-%m-%d")) == ["2020-02-01", "2020-02-13"]


def test_changing_utc_offsets_are_read_in_utc(tmp_path):
    got = read_csv(write(tmp_path, "time,v\n2020-03-29T01:00:00+01:00,1\n"
                                   "2020-03-29T03:00:00+02:00,2\n2020-03-29T04:00:00+02:00,3\n"))
    assert str(got.dates.tz) == "UTC" and got.dates.freqstr == "h"


def test_newest_first_is_returned_oldest_first(tmp_path):
    got = read_csv(write(tmp_path, "date,v\n2020-03-01,3\n2020-02-01,2\n2020-01-01,1\n"))
    np.testing.assert_array_equal(got.values, [1, 2, 3])
    assert got.dates.is_monotonic_increasing and got.dates.freqstr == "MS"


def test_dates_out_of_order(tmp_path):
    with pytest.raises(ValueError, match=r"line 4: date column 'date' holds '2020-01-15', out "
                                         r"of order after '2020-02-01': the rows must be in "
                                         r"time order"):
        read_csv(write(tmp_path, "date,v\n2020-01-01,1\n2020-02-01,2\n2020-01-15,3\n"
                                 "2020-03-01,4\n"))


def test_repeated_date_names_both_lines(tmp_path):
    with pytest.raises(ValueError, match=r"line 5: date column 'date' repeats the date "
                                         r"'2020-01-02' of line 4: one row per date"):
        read_csv(write(tmp_path, "# c\ndate,v\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n"))


@pytest.mark.parametrize("cell, what", [("", "has no value \\(missing"),
                                        ("NA", "has no value \\('NA'\\)"),
                                        ("soon", "holds 'soon', which is not a date")])
def test_bad_date(tmp_path, cell, what):
    with pytest.raises(ValueError, match=rf"series.csv, line 4: date column 'date' {what}"):
        read_csv(write(tmp_path, f"date,v\n2020-01-01,1\n2020-01-02,2\n{cell},3\n"),
                 date_column="date")


def test_missing_date_in_a_found_date_column(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: date column 'date' has no value \('\?'\)"):
        read_csv(write(tmp_path, "date,v\n2020-01-01,1\n?,2\n2020-01-03,3\n"))


@pytest.mark.parametrize("start, periods, freq, season, after", [
    ("2020-01-01", 30, "MS", 12, "2022-07-01"),
    ("2020-01-31", 30, "ME", 12, "2022-07-31"),
    ("2020-01-01", 12, "QS-JAN", 4, "2023-01-01"),
    ("2020-01-05", 60, "W-SUN", 52, "2021-02-28"),
    ("2020-01-01", 30, "D", 7, "2020-01-31"),
    ("2020-01-01", 50, "h", 24, "2020-01-03 02:00:00"),
    ("1949-01-01", 12, "YS-JAN", 1, "1961-01-01"),
])
def test_dates_work_with_season_of_and_future_dates(tmp_path, start, periods, freq, season,
                                                    after):
    dates = pd.date_range(start, periods=periods, freq=freq)
    text = "date,v\n" + "".join(f"{d},{k}\n" for k, d in enumerate(dates))
    got = read_csv(write(tmp_path, text))
    assert got.dates.freqstr == freq
    assert season_of(got.dates) == season
    assert str(future_dates(got.dates, 1)[0]) == pd.Timestamp(after).isoformat(" ")


def test_quarters_written_as_quarters(tmp_path):
    got = read_csv(write(tmp_path, "quarter,v\n2020Q1,1\n2020-Q2,2\n2020 q3,3\n2020Q4,4\n"))
    assert list(got.dates.strftime("%Y-%m-%d")) == ["2020-01-01", "2020-04-01", "2020-07-01",
                                                    "2020-10-01"]
    assert season_of(got.dates) == 4 and got.dates.freqstr == "QS-JAN"


def test_irregular_dates_have_no_freq(tmp_path):
    got = read_csv(write(tmp_path, "date,v\n2020-01-01,1\n2020-01-02,2\n2020-01-05,3\n"))
    assert got.dates.freq is None
    assert str(future_dates(got.dates, 1)[0].date()) == "2020-01-08"   # by the last step


def test_forecaster_takes_what_read_csv_returns(tmp_path):
    from lstm_native.forecasting import Forecaster
    got = read_csv(write(tmp_path, monthly(60)))
    forecaster = Forecaster(lookback=6, hidden=4, epochs=2).fit(got.values, dates=got.dates)
    assert forecaster.future_dates(3)[0] == pd.Timestamp("2025-01-01")


# -- values -------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, what", [
    ("", "has no value \\(missing values are not supported: fill or drop them\\)"),
    ("NA", "has no value \\('NA'\\) \\(missing values"),
    ("NaN", "has no value \\('NaN'\\)"),
    ("?", "has no value \\('\\?'\\)"),
    ("n/a", "has no value \\('n/a'\\)"),
    ("12 kg", "holds '12 kg', which is not a number"),
    ("inf", "holds 'inf'; only finite numbers are supported"),
    ("-Infinity", "holds '-Infinity'; only finite"),
    ("1e400", "holds '1e400'; only finite"),
])
def test_bad_value_names_column_line_and_text(tmp_path, cell, what):
    text = "# a comment\n\ndate,sales\n2020-01-01,1\n\n2020-01-02,2\n2020-01-03," + cell + "\n"
    with pytest.raises(ValueError, match=rf"^.*series.csv, line 7: column 'sales' {what}"):
        read_csv(write(tmp_path, text))


def test_line_numbers_count_line_breaks_in_quoted_fields(tmp_path):
    text = 'note,v\n"two\nlines",1\nx,oops\n'
    with pytest.raises(ValueError, match=r"line 4: column 'v' holds 'oops'"):
        read_csv(write(tmp_path, text))


def test_a_short_row_is_a_missing_value(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: column 'b' has no value"):
        read_csv(write(tmp_path, "a,b\n1,2\n3\n"))


def test_min_length(tmp_path):
    path = write(tmp_path, monthly(3))
    assert len(read_csv(path, min_length=3).values) == 3
    with pytest.raises(ValueError, match=r"too short: it has 3 rows, and at least "
                                         r"min_length = 4 are needed"):
        read_csv(path, min_length=4)
    with pytest.raises(ValueError, match="too short: it has 0 rows"):
        read_csv(write(tmp_path, "date,v\n"))


# -- files --------------------------------------------------------------------------------

def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(IsADirectoryError, match="got the directory"):
        read_csv(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_unread():
    with pytest.raises(ValueError, match="must be a regular CSV file, got '/dev/zero'"):
        read_csv("/dev/zero")


def test_not_utf8(tmp_path):
    path = write(tmp_path, "v\n1\n\xe9t\xe9\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"line 3: the file is not UTF-8 text \(byte 0xe9\); "
                                         r"save it as UTF-8"):
        read_csv(path)
    with pytest.raises(ValueError, match="not UTF-8"):
        read_csv(write(tmp_path, "v\n1\n", encoding="utf-16"))


def test_binary_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="line 2: a NUL character"):
        read_csv(write(tmp_path, b"v\n\x00\x01\n"))
    for text in ["", "\n\n", "# only a comment\n"]:
        with pytest.raises(ValueError, match="the file is empty; expected a header row"):
            read_csv(write(tmp_path, text))


def test_malformed_csv(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: 3 fields, where the header has 2"):
        read_csv(write(tmp_path, "a,b\n1,2\n3,4,5\n"))
    with pytest.raises(ValueError, match=r"line 5: 3 fields, where the header has 2"):
        read_csv(write(tmp_path, '# c\na,b\n"x\ny",2\n3,4,5\n'))
    with pytest.raises(ValueError, match=r"not a well-formed CSV file \(EOF inside string"):
        read_csv(write(tmp_path, 'a,b\n1,"2\n'))


def test_size_cap(tmp_path):
    path = write(tmp_path, monthly(50))
    with pytest.raises(ValueError, match="larger than max_bytes = 100 bytes"):
        read_csv(path, max_bytes=100)
    assert len(read_csv(path, max_bytes=path.stat().st_size).values) == 50


def test_too_many_lines(tmp_path, monkeypatch):
    from lstm_native.data import dated
    path = write(tmp_path, monthly(5))
    monkeypatch.setattr(dated, "MAX_CSV_LINES", 7)
    assert len(read_csv(path).values) == 5          # 6 lines and the empty one after
    monkeypatch.setattr(dated, "MAX_CSV_LINES", 6)
    with pytest.raises(ValueError, match="the file has 7 lines; at most 6 are read"):
        read_csv(path)


def test_too_many_columns(tmp_path):
    from lstm_native.data.dated import MAX_CSV_COLUMNS
    with pytest.raises(ValueError, match=f"line 1: the header has {MAX_CSV_COLUMNS + 1} "
                                         "columns"):
        read_csv(write(tmp_path, ",".join(["c"] * (MAX_CSV_COLUMNS + 1)) + "\n"))


def test_argument_types(tmp_path):
    path = write(tmp_path, "v\n1\n")
    for kwargs, name in [(dict(path=1), "path"), (dict(column=1.5), "column"),
                         (dict(column=True), "column"), (dict(date_column=[0]), "date_column"),
                         (dict(min_length="2"), "min_length"), (dict(delimiter=",,"),
                                                                "delimiter"),
                         (dict(delimiter='"'), "delimiter"), (dict(max_bytes=None),
                                                              "max_bytes")]:
        kwargs.setdefault("path", path)
        with pytest.raises(TypeError, match=name):
            read_csv(**kwargs)
    with pytest.raises(ValueError, match="min_length must be an int >= 1"):
        read_csv(path, min_length=0)


def test_without_pandas(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'lstm_native\[forecasting\]'"):
        read_csv(write(tmp_path, "v\n1\n"))


def test_import_does_not_import_pandas():
    code = "import sys, lstm_native, lstm_native.data; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


PANDAS_FREE = {"test_argument_types", "test_without_pandas",
               "test_import_does_not_import_pandas"}

CELLS = st.sampled_from(["1", "2,5", "-3", "1e3", "2020-01", "1949", "31.01.2020", "", "NA",
                         "?", "inf", '"q', "#c", "x", "2020Q1", "\ufeff1", "\r"])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS | st.text(max_size=4), min_size=1, max_size=3),
                     max_size=6),
       sep=st.sampled_from([",", ";", "\t", "|"]),
       raw=st.none() | st.text(max_size=60))
def test_any_text_reads_or_gives_a_value_error(tmp_path, rows, sep, raw):
    text = raw if raw is not None else "\n".join(sep.join(r) for r in [["date", "v"], *rows])
    path = write(tmp_path, text)
    try:
        got = read_csv(path)
    except ValueError:
        return
    assert got.values.dtype == np.float64 and np.isfinite(got.values).all()
    assert len(got.values) >= 1
    assert got.dates is None or (len(got.dates) == len(got.values)
                                 and got.dates.is_monotonic_increasing)


def test_free_form_dates_only_in_a_column_said_to_hold_dates(tmp_path):
    text = "{},v\nJan 2020,1\nFeb 2020,2\nMar 2020,3\n"
    got = read_csv(write(tmp_path, text.format("Month")))
    assert got.date_column == "Month" and got.dates.freqstr == "MS"
    assert read_csv(write(tmp_path, text.format("label"))).dates is None
    assert read_csv(write(tmp_path, text.format("label")), date_column=0).dates.month[2] == 3
    # dateutil would read these as dates of the year 1 or of today
    for cells in ["1,5;1/5", "12:30;13:30"]:
        assert read_csv(write(tmp_path, "a;v\n" + cells.replace(";", ";1\n") + ";2\n")
                        ).dates is None


def test_header_only_with_a_date_column_given(tmp_path):
    with pytest.raises(ValueError, match="too short: it has 0 rows"):
        read_csv(write(tmp_path, "date,v\n\n"), date_column="date")


def test_a_huge_cell_is_shown_cut_short(tmp_path):
    with pytest.raises(ValueError, match=r"line 2: column 'v' holds '1{37}\.\.\.', which is "
                                         r"not a number$"):
        read_csv(write(tmp_path, "v\n" + "1" * 300_000 + "\n"))
    with pytest.raises(ValueError, match=r"date column 'date' holds 'x{37}\.\.\.', which"):
        read_csv(write(tmp_path, "date,v\n" + "x" * 300_000 + ",1\n"), date_column="date")


def test_a_header_of_delimiters_only(tmp_path):
    with pytest.raises(ValueError, match="too short: it has 0 rows"):
        read_csv(write(tmp_path, ",,\n"))
    with pytest.raises(ValueError, match=r"no column of values: the only column ';;'"):
        read_csv(write(tmp_path, ";;\n;\t\n"), date_column=0)
