"""The constructors take torch's arguments in torch's order, positionally, all of them;
`device` and `dtype` as torch spells them; our own extras keyword-only; errors that name
the public class; `flatten_parameters`; configurations and checkpoints as before."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lstm_native as ln
from conftest import import_torch
from lstm_native.checkpoint import build_module

LAYERS = [ln.LSTM, ln.GRU, ln.RNN]
CELLS = [ln.LSTMCell, ln.GRUCell, ln.RNNCell]
ALL = LAYERS + CELLS

#: torch's documented order (torch/nn/modules/rnn.py).
TORCH_ORDER = {
    ln.LSTM: ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
              "bidirectional", "proj_size", "device", "dtype"],
    ln.GRU: ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
             "bidirectional", "device", "dtype"],
    ln.RNN: ["input_size", "hidden_size", "num_layers", "nonlinearity", "bias",
             "batch_first", "dropout", "bidirectional", "device", "dtype"],
    ln.LSTMCell: ["input_size", "hidden_size", "bias", "device", "dtype"],
    ln.GRUCell: ["input_size", "hidden_size", "bias", "device", "dtype"],
    ln.RNNCell: ["input_size", "hidden_size", "bias", "nonlinearity", "device", "dtype"],
}
#: Our own arguments (not torch's): keyword-only.
OURS = {"seed", "n_threads", "reset_after", "init", "unit_forget_bias"}


def _positional(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]


def _keyword_only(cls):
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name for p in params if p.kind is p.KEYWORD_ONLY}


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_positional_arguments_are_torchs_in_torchs_order(cls):
    assert _positional(cls) == TORCH_ORDER[cls]
    assert OURS & set(inspect.signature(cls.__init__).parameters) <= _keyword_only(cls)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_positional_order_and_defaults_equal_torchs_own(cls):
    """Against torch's signature itself (the layers' typed overload), the defaults too
    (torch's dtype None is our float32)."""
    import typing
    torch = import_torch()
    init = getattr(torch.nn, cls.__name__).__init__
    if cls in LAYERS:
        init = typing.get_overloads(init)[0]
    theirs = list(inspect.signature(init).parameters.values())[1:]
    assert _positional(cls) == [p.name for p in theirs]
    ours = inspect.signature(cls.__init__).parameters
    for p in theirs:
        if p.name in ours and p.name != "dtype":
            assert ours[p.name].default == p.default, p.name


@pytest.mark.parametrize("args,kwargs", [
    ((4, 8), {}),
    ((4, 8, 2), {}),
    ((4, 8, 2, True), {}),
    ((4, 8, 2, False, True), {}),
    ((4, 8, 1, True, True), dict(bidirectional=True)),
])
@pytest.mark.parametrize("cls", [ln.LSTM, ln.GRU], ids=lambda c: c.__name__)
def test_torchs_positional_calls_lstm_gru(cls, args, kwargs):
    torch = import_torch()
    ours = cls(*args, **kwargs, seed=0)
    theirs = getattr(torch.nn, cls.__name__)(*args, **kwargs)
    for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                 "bidirectional"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("args", [
    (4, 8, 2, True, False, 0.0, True, 3),
    (4, 8, 1, False, True, 0.0, False, 5, "cpu"),
    (4, 8, 2, True, False, 0.0, False, 0, None, "float64"),
])
def test_torchs_positional_calls_lstm_with_proj_size_device_dtype(args):
    torch = import_torch()
    ours = ln.LSTM(*args, seed=0)
    theirs = torch.nn.LSTM(*args[:9], *([torch.float64] if len(args) > 9 else []))
    for name in ("num_layers", "bias", "batch_first", "bidirectional", "proj_size"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.dtype == np.dtype(str(theirs.weight_ih_l0.dtype).replace("torch.", ""))
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("args", [
    (4, 8, 2, "relu"),
    (4, 8, 2, "tanh", False),
    (4, 8, 3, "relu", True, True),
    (4, 8, 1, "tanh", True, False),
])
def test_torchs_positional_calls_rnn(args):
    torch = import_torch()
    ours = ln.RNN(*args, seed=0)
    theirs = torch.nn.RNN(*args)
    for name in ("input_size", "hidden_size", "num_layers", "nonlinearity", "bias",
                 "batch_first"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def test_torchs_positional_calls_cells():
    torch = import_torch()
    calls = [
        (ln.LSTMCell, (4, 8, False, None, torch.float64)),
        (ln.LSTMCell, (4, 8, True, "cpu")),
        (ln.GRUCell, (4, 8, False, torch.device("cpu"), torch.float64)),
        (ln.GRUCell, (4, 8, True)),
        (ln.RNNCell, (4, 8, False, "relu", "cpu", torch.float64)),
        (ln.RNNCell, (4, 8, True, "tanh", None, torch.float32)),
    ]
    for cls, args in calls:
        ours = cls(*args, seed=0)
        theirs = getattr(torch.nn, cls.__name__)(*args)
        for name in ("input_size", "hidden_size", "bias", "nonlinearity"):
            assert getattr(ours, name, None) == getattr(theirs, name, None), (cls, name)
        assert ours.dtype == np.dtype(str(theirs.weight_ih.dtype).replace("torch.", ""))
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in theirs.state_dict().items()}


def test_the_arguments_after_the_positional_ones_are_keywords():
    # One more than torch's: each is a TypeError naming the public class.
    for cls, args in [(ln.LSTM, (4, 8, 1, True, False, 0.0, False, 0, None, np.float32, 0)),
                      (ln.GRU, (4, 8, 1, True, False, 0.0, False, None, np.float32, True)),
                      (ln.RNN, (4, 8, 1, "tanh", True, False, 0.0, False, None, np.float32,
                                0)),
                      (ln.LSTMCell, (4, 8, True, None, np.float32, 0)),
                      (ln.GRUCell, (4, 8, True, None, np.float32, True)),
                      (ln.RNNCell, (4, 8, True, "tanh", None, np.float32, 0))]:
        with pytest.raises(TypeError, match=rf"^{cls.__name__}\.__init__\(\) takes"):
            cls(*args)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_a_wrong_keyword_names_the_public_class(cls):
    with pytest.raises(TypeError) as info:
        cls(2, 3, hidden=3)
    message = str(info.value)
    assert message.startswith(f"{cls.__name__}.__init__() got an unexpected keyword "
                              "argument 'hidden'"), message
    assert "_Recurrent" not in message


@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_our_extras_are_keyword_only(cls):
    assert {"seed", "n_threads"} <= _keyword_only(cls)
    assert ({"reset_after"} <= _keyword_only(cls)) == (cls is ln.GRU)
    assert "reset_after" in _keyword_only(ln.GRUCell)


# -- device -----------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_device_cpu_is_accepted(cls):
    devices = [None, "cpu"]
    torch = sys.modules.get("torch")
    if torch is not None:
        devices.append(torch.device("cpu"))
    for device in devices:
        m = cls(2, 3, device=device, seed=0)
        assert m.dtype == np.float32
        assert "device" not in m.get_config()


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("device,error", [
    ("cuda", ValueError), ("cuda:0", ValueError), ("CPU", ValueError), ("cpu:0", ValueError),
    ("mps", ValueError), ("", ValueError),
    (0, TypeError), (1.5, TypeError), (b"cpu", TypeError), (object(), TypeError),
    (np.float32, TypeError),
], ids=repr)
def test_device_other_than_the_cpu_is_refused(cls, device, error):
    with pytest.raises(error, match=r"^device must be None, 'cpu' or torch\.device\('cpu'\)"):
        cls(2, 3, device=device)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_torch_devices_other_than_the_cpu_are_refused(cls):
    torch = import_torch()
    for device in (torch.device("cuda"), torch.device("cuda", 1), torch.device("meta"),
                   torch.device("cpu", 0)):
        with pytest.raises(ValueError, match="device must be") as info:
            cls(2, 3, device=device)
        assert repr(device) in str(info.value)


# -- dtype ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype,expected", [
    (None, np.float32), (np.float32, np.float32), (np.float64, np.float64),
    ("float32", np.float32), ("float64", np.float64), (np.dtype("f8"), np.float64),
    ("double", np.float64), (float, np.float64),
], ids=repr)
def test_numpy_dtypes_and_their_names(cls, dtype, expected):
    m = cls(2, 3, dtype=dtype, seed=0)
    assert m.dtype == expected
    assert all(p.dtype == expected for p in m.parameters().values())
    assert m.get_config()["dtype"] == np.dtype(expected).name


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_torch_dtypes(cls):
    torch = import_torch()
    for dtype, expected in [(torch.float32, np.float32), (torch.float64, np.float64),
                            (torch.float, np.float32), (torch.double, np.float64)]:
        m = cls(2, 3, dtype=dtype, seed=0)
        assert m.dtype == expected
        assert m.get_config()["dtype"] == np.dtype(expected).name
        json.dumps(m.get_config())
    for dtype in (torch.float16, torch.bfloat16, torch.int64, torch.complex64, torch.bool):
        with pytest.raises(TypeError, match="dtype must be") as info:
            cls(2, 3, dtype=dtype)
        assert str(dtype) in str(info.value)
    # A torch object that is no dtype is no dtype either.
    with pytest.raises(TypeError, match="dtype must be"):
        cls(2, 3, dtype=torch.device("cpu"))


def test_torch_dtypes_load_torchs_weights_exactly():
    torch = import_torch()
    t = torch.nn.LSTM(3, 4, 2, True, False, dtype=torch.float64)
    m = ln.LSTM(3, 4, 2, True, False, dtype=torch.float64)
    m.load_state_dict(t.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    out, _ = m.eval()(x)
    t_out, _ = t(torch.from_numpy(x))
    assert np.abs(out - t_out.detach().numpy()).max() <= 1e-12


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "float16", "nope", object(),
                                   np.complex128])
def test_other_dtypes_are_refused(dtype):
    for cls in ALL:
        with pytest.raises(TypeError, match="^dtype must be"):
            cls(2, 3, dtype=dtype)


def test_torch_is_not_imported_for_numpy_dtypes_or_devices():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import lstm_native as ln
        for cls in (ln.LSTM, ln.GRU, ln.RNN, ln.LSTMCell, ln.GRUCell, ln.RNNCell):
            for dtype in (None, np.float32, "float64", np.dtype("f4")):
                cls(2, 3, dtype=dtype, device="cpu")
            for bad in ("cuda", 0):
                try:
                    cls(2, 3, device=bad)
                except (TypeError, ValueError):
                    pass
            try:
                cls(2, 3, dtype=np.int8)
            except TypeError:
                pass
        ln.LSTM(2, 3).flatten_parameters()
        print("torch" in sys.modules)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


# -- flatten_parameters -----------------------------------------------------------------

@pytest.mark.parametrize("cls", LAYERS, ids=lambda c: c.__name__)
def test_flatten_parameters_is_a_no_op(cls):
    m = cls(3, 4, 2, seed=0)
    before = m.parameters()
    copies = m.state_dict()
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    out = m.eval()(x)[0]
    assert m.flatten_parameters() is None
    after = m.parameters()
    assert all(after[k] is before[k] for k in before)
    assert all(np.array_equal(after[k], copies[k]) for k in copies)
    assert np.array_equal(m(x)[0], out)
    assert "no-op" in cls.flatten_parameters.__doc__ or "nothing" in \
        cls.flatten_parameters.__doc__


def test_torch_style_code_runs_unchanged():
    """What a torch script does, minus .to(device): positional construction, torch's
    dtype, flatten_parameters before the call."""
    torch = import_torch()
    device = torch.device("cpu")
    lstm = ln.LSTM(3, 5, 2, True, True, device=device, dtype=torch.float32)
    lstm.flatten_parameters()
    out, (h, c) = lstm(np.ones((4, 6, 3), np.float32))
    assert out.shape == (4, 6, 5) and h.shape == (2, 4, 5)


# -- configurations and checkpoints -----------------------------------------------------

#: get_config() as the files written before these signatures hold it: they must load.
OLD_CONFIGS = [
    ("LSTM", {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bias": True,
              "batch_first": False, "bidirectional": True, "dtype": "float32",
              "n_threads": None}),
    ("RNN", {"input_size": 3, "hidden_size": 4, "num_layers": 1, "nonlinearity": "relu",
             "bias": False, "batch_first": True, "bidirectional": False, "dtype": "float64",
             "n_threads": 1}),
    ("GRU", {"input_size": 3, "hidden_size": 4, "num_layers": 2, "reset_after": False,
             "bias": True, "batch_first": False, "bidirectional": False, "dtype": "float32",
             "n_threads": None}),
    ("LSTMCell", {"input_size": 3, "hidden_size": 4, "bias": True, "dtype": "float64",
                  "n_threads": None}),
    ("GRUCell", {"input_size": 3, "hidden_size": 4, "bias": False, "reset_after": True,
                 "dtype": "float32", "n_threads": 2}),
]


@pytest.mark.parametrize("name,config", OLD_CONFIGS, ids=[n for n, _ in OLD_CONFIGS])
def test_existing_configs_still_build_and_load(tmp_path, name, config):
    m = build_module({"type": name, "config": config})
    # What these files did not hold takes its default (a layer's dropout: 0, every
    # layer's and cell's init: torch's, an LSTM's proj_size: 0, unit_forget_bias: False,
    # no variant).
    now = {**config, "init": "torch"}
    if name in ("LSTM", "RNN", "GRU"):
        now.update(dropout=0.0, input_dropout=0.0, recurrent_dropout=0.0)
    if name == "LSTM":
        now["proj_size"] = 0
    if name in ("LSTM", "LSTMCell"):
        now.update(unit_forget_bias=False, peepholes=False, clip=None, input_forget=False,
                   layer_norm=False)
    assert type(m).__name__ == name and m.get_config() == now
    ln.save_checkpoint(tmp_path / "m.npz", m)
    loaded = ln.load_model(tmp_path / "m.npz")
    assert type(loaded) is type(m) and loaded.get_config() == now
    assert all(np.array_equal(loaded.state_dict()[k], v) for k, v in m.state_dict().items())


def _built_positionally():
    return [ln.LSTM(3, 4, 2, False, True, bidirectional=True, dtype="float64", seed=0),
            ln.GRU(3, 4, 2, True, True, reset_after=False, seed=0),
            ln.RNN(3, 4, 2, "relu", False, True, seed=0),
            ln.LSTMCell(3, 4, False, "cpu", np.float64, seed=0),
            ln.GRUCell(3, 4, False, None, "float32", reset_after=False, seed=0),
            ln.RNNCell(3, 4, False, "relu", "cpu", np.float64, seed=0, n_threads=1)]


@pytest.mark.parametrize("index", range(6), ids=[type(m).__name__
                                                  for m in _built_positionally()])
def test_get_config_round_trips_and_checkpoints(tmp_path, index):
    m = _built_positionally()[index]
    config = json.loads(json.dumps(m.get_config()))
    assert type(m)(**config).get_config() == m.get_config()
    assert repr(type(m)(**config)) == repr(m)
    ln.save_checkpoint(tmp_path / "m.npz", m)
    loaded = ln.load_model(tmp_path / "m.npz")
    assert type(loaded) is type(m) and loaded.get_config() == m.get_config()
    assert all(np.array_equal(loaded.state_dict()[k], v) for k, v in m.state_dict().items())
