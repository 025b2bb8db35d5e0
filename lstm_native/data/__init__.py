"""Time-series data for lstm_native: windows, scalers, splits, forecasting helpers, datasets.

The data layer imports nothing of the model (NumPy and the standard library only), and
the forecasting helpers take a plain callable. The usual path from a series to training
pairs::

    from lstm_native.data import (load_dataset, chronological_split, StandardScaler,
                                  make_windows, persistence_forecast)

    series = load_dataset("airline")                        # (144,) float64
    train, val, test = chronological_split(series, 0.7, 0.15, min_length=13)
    scaler = StandardScaler().fit(train)                    # training part only
    x_train, y_train = make_windows(scaler.transform(train), lookback=12, horizon=1)
    x_test, y_test = make_windows(scaler.transform(test), lookback=12, horizon=1)
    baseline = persistence_forecast(x_test, horizon=1)      # (N, 1, 1), to beat

Modules: `windows` (`make_windows`), `scalers`, `split` (`chronological_split`),
`forecast` (direct vs recursive multi-step forecasting, the persistence baseline),
`datasets` (built-in data by name, incl. Box & Jenkins' airline passengers), `csv_io`
(`load_csv` for your own CSV files, standard library only), `dated` (`read_csv`: a CSV
file's series with its dates, read with pandas; the delimiter and the date column found).
"""
from .csv_io import load_csv
from .dated import CSVSeries, read_csv
from .datasets import (IGNORE_INDEX, adding_problem, airline_passengers, copy_task,
                       list_datasets, load_dataset, noisy_sine, sum_of_sines)
from .forecast import forecast_recursive, persistence_forecast
from .scalers import MinMaxScaler, StandardScaler, scaler_from_state
from .split import chronological_split
from .windows import make_windows, n_windows

__all__ = [
    "CSVSeries",
    "IGNORE_INDEX",
    "MinMaxScaler",
    "StandardScaler",
    "adding_problem",
    "airline_passengers",
    "chronological_split",
    "copy_task",
    "forecast_recursive",
    "list_datasets",
    "load_csv",
    "load_dataset",
    "make_windows",
    "n_windows",
    "noisy_sine",
    "persistence_forecast",
    "read_csv",
    "scaler_from_state",
    "sum_of_sines",
]
