"""`lstm_native.checkpoint`: round trips (architecture, bitwise weights, epoch, extra,
optimizer state), the file format (no pickle), atomic writes, and every error on load."""
from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import checkpoint
from lstm_native.checkpoint import (
    FORMAT_VERSION,
    build_module,
    load_checkpoint,
    load_model,
    register_module,
    save_checkpoint,
)
from lstm_native.layers import Dropout, LastStep, Linear, Sequential


class FakeOptimizer:
    """What the checkpoint needs of an optimizer: state_dict() and load_state_dict()."""

    def __init__(self, state=None):
        self.state = state
        self.loaded = None

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        if set(state) != {"lr", "betas", "step", "state", "names", "flags"}:
            raise KeyError(f"unexpected optimizer state keys {sorted(state)}")
        self.loaded = state


def _optimizer_state():
    rng = np.random.default_rng(0)
    return {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "step": np.int64(17),
        "state": {0: {"exp_avg": rng.standard_normal((8, 3)).astype(np.float32),
                      "exp_avg_sq": rng.random(8)},
                  1: {"exp_avg": np.zeros(2), "exp_avg_sq": np.ones(2)}},
        "names": ["0.weight_ih_l0", "3.bias"],
        "flags": {"amsgrad": False, "maximize": None, "__array__": "not a reference"},
    }


def _model(dtype=np.float32):
    return Sequential(ln.LSTM(3, 4, 2, bidirectional=True, batch_first=True, dtype=dtype,
                              seed=0),
                      Dropout(0.25, seed=3), LastStep(batch_first=True, bidirectional=True),
                      Linear(8, 2, dtype=dtype, seed=1))


def _assert_same_tree(a, b, where="root"):
    assert type(a) is type(b), f"{where}: {type(a)} vs {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}/{i}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    else:
        assert a == b, where


def _assert_weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


# -------------------------------------------------------------------------------------
# Round trips
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: _model(np.float32),
    lambda: _model(np.float64),
    lambda: ln.LSTM(3, 5, 2, bias=False, dtype=np.float64, seed=2),
    lambda: ln.LSTMCell(3, 4, seed=2),
    lambda: ln.GRU(3, 5, 2, bidirectional=True, reset_after=False, dtype=np.float64, seed=2),
    lambda: ln.GRUCell(3, 4, bias=False, seed=2),
    lambda: ln.RNNCell(3, 4, bias=False, nonlinearity="relu", dtype=np.float64, seed=2),
    lambda: Linear(4, 3, bias=False, dtype=np.float64, seed=2),
    lambda: Sequential(Sequential(ln.LSTM(2, 3, seed=0), LastStep()), Linear(3, 1, seed=1),
                       Dropout(0.1)),
    lambda: Sequential(ln.LSTM(2, 3, seed=0), Linear(3, 1, seed=1), stateful=True),
], ids=["seq32", "seq64", "lstm", "cell", "gru", "gru-cell", "rnn-cell", "linear", "nested", "stateful"])
def test_load_model_round_trip(tmp_path, make):
    model = make()
    path = tmp_path / "model.npz"
    save_checkpoint(path, model)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    _assert_weights_equal(loaded, model)
    assert loaded is not model


def test_loaded_model_computes_the_same(tmp_path):
    model = _model().eval()
    save_checkpoint(tmp_path / "m.npz", model)
    loaded = load_model(tmp_path / "m.npz").eval()
    x = np.random.default_rng(0).standard_normal((3, 6, 3)).astype(np.float32)
    lengths = [6, 2, 4]
    assert np.array_equal(loaded(x, lengths=lengths), model(x, lengths=lengths))


def test_checkpoint_round_trip_with_optimizer_epoch_extra(tmp_path):
    model = _model()
    state = _optimizer_state()
    extra = {"history": {"loss": [1.5, 0.75, float("nan")]},
             "scaler": {"mean": np.array([1.0, 2.0]), "scale": np.float32(3.0)},
             "window": (24, 1), "note": "ünïcode"}
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, model, FakeOptimizer(state), epoch=7, extra=extra)

    result = load_checkpoint(path)
    assert set(result) == {"model", "epoch", "extra", "optimizer_state"}
    _assert_weights_equal(result["model"], model)
    assert result["epoch"] == 7
    assert np.isnan(result["extra"]["history"]["loss"][2])
    result["extra"]["history"]["loss"][2] = extra["history"]["loss"][2] = 0.0
    _assert_same_tree(result["extra"], extra)
    _assert_same_tree(result["optimizer_state"], state)

    # Into a given model and optimizer.
    other = _model()
    other.load_state_dict({k: np.zeros_like(v) for k, v in other.state_dict().items()})
    optimizer = FakeOptimizer()
    result = load_checkpoint(path, model=other, optimizer=optimizer)
    assert result["model"] is other
    _assert_weights_equal(other, model)
    _assert_same_tree(optimizer.loaded, state)


def test_checkpoint_without_optional_parts(tmp_path):
    save_checkpoint(tmp_path / "c.npz", Linear(2, 2))
    result = load_checkpoint(tmp_path / "c.npz")
    assert result["epoch"] is None and result["extra"] is None
    assert result["optimizer_state"] is None
    with pytest.raises(ValueError, match="c.npz: the checkpoint holds no optimizer state"):
        load_checkpoint(tmp_path / "c.npz", optimizer=FakeOptimizer())


def test_any_extra_key_round_trips(tmp_path):
    """Keys that cannot be zip member names as they are: a NUL (zipfile cuts the name
    there), a backslash (a separator on Windows), a name longer than a zip takes."""
    extra = {"a\x00b": np.arange(2), "a\x00c": np.arange(3), "a\\b": np.ones(1),
             "k" * 70000: np.zeros(2), "int": np.int64(2)}
    save_checkpoint(tmp_path / "keys.npz", Linear(2, 2), epoch=2**63 - 1, extra=extra)
    result = load_checkpoint(tmp_path / "keys.npz")
    _assert_same_tree(result["extra"], extra)
    assert result["epoch"] == 2**63 - 1


def test_the_file_holds_no_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, _model(), FakeOptimizer(_optimizer_state()), epoch=1,
                    extra={"a": np.arange(3)})
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert all(not a.dtype.hasobject for a in arrays.values())
    meta = json.loads(arrays.pop("__metadata__").tobytes().decode("utf-8"))
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["model"] == {"type": "Sequential", "config": _model().get_config()}
    assert "model/0.weight_ih_l0_reverse" in arrays and "model/3.weight" in arrays
    assert "optimizer/state/0/exp_avg" in arrays and "extra/a" in arrays
    assert all(k.startswith(("model/", "optimizer/", "extra/")) for k in arrays)


def test_metadata_as_a_unicode_array_is_read(tmp_path):
    """The format allows the JSON as a 0-d unicode array instead of uint8 bytes."""
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, Linear(2, 3, seed=0), epoch=4)
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["__metadata__"] = np.array(arrays["__metadata__"].tobytes().decode("utf-8"))
    np.savez(tmp_path / "unicode.npz", **arrays)
    assert load_checkpoint(tmp_path / "unicode.npz")["epoch"] == 4


def test_register_module_adds_a_class(tmp_path):
    class ScaledLinear(Linear):
        pass

    model = Sequential(ScaledLinear(2, 3, seed=0), Linear(3, 1))
    with pytest.raises(ValueError, match="ScaledLinear is not a registered"):
        save_checkpoint(tmp_path / "s.npz", model)
    assert not (tmp_path / "s.npz").exists()
    assert register_module(ScaledLinear) is ScaledLinear
    try:
        save_checkpoint(tmp_path / "s.npz", model)
        loaded = load_model(tmp_path / "s.npz")
        assert type(loaded[0]) is ScaledLinear
        _assert_weights_equal(loaded, model)

        class ScaledLinear(Linear):  # noqa: F811 - another class of the same name
            pass

        with pytest.raises(ValueError, match="already registered"):
            register_module(ScaledLinear)
    finally:
        checkpoint._REGISTRY.pop("ScaledLinear")
    with pytest.raises(TypeError, match="Module subclass"):
        register_module(dict)


def test_a_given_model_of_a_class_not_registered_here_loads(tmp_path):
    """Loading into a given model builds nothing: its class need not be registered in
    this process (it was where the file was saved)."""
    class Scaled(Linear):
        pass

    saved = Sequential(Scaled(2, 3, seed=0), Linear(3, 1, seed=0))
    register_module(Scaled)
    try:
        save_checkpoint(tmp_path / "s.npz", saved)
    finally:
        checkpoint._REGISTRY.pop("Scaled")
    model = Sequential(Scaled(2, 3, seed=5), Linear(3, 1, seed=5))
    assert load_checkpoint(tmp_path / "s.npz", model=model)["model"] is model
    _assert_weights_equal(model, saved)
    with pytest.raises(ValueError, match="unknown model type 'Scaled'"):
        load_model(tmp_path / "s.npz")
    with pytest.raises(ValueError, match="does not match"):
        load_checkpoint(tmp_path / "s.npz", model=Sequential(Scaled(2, 4), Linear(4, 1)))


def test_build_module_from_description():
    model = build_module({"type": "Linear", "config": {"in_features": 2, "out_features": 5,
                                                       "bias": False, "dtype": "float64"}})
    assert isinstance(model, Linear) and model.parameters()["weight"].shape == (5, 2)
    assert model.dtype == np.float64 and not model.bias
    with pytest.raises(ValueError, match="unknown model type 'Transformer'"):
        build_module({"type": "Transformer", "config": {}})


def test_save_argument_errors(tmp_path):
    model = Linear(2, 2)
    with pytest.raises(TypeError, match="epoch"):
        save_checkpoint(tmp_path / "a.npz", model, epoch=1.5)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path / "a.npz", model, epoch=-1)
    with pytest.raises(ValueError, match="epoch"):  # what a load would refuse
        save_checkpoint(tmp_path / "a.npz", model, epoch=2**63)
    with pytest.raises(TypeError, match="extra must be None or a dict"):
        save_checkpoint(tmp_path / "a.npz", model, extra=[1, 2])
    with pytest.raises(TypeError, match="extra/when: a set"):
        save_checkpoint(tmp_path / "a.npz", model, extra={"when": {1, 2}})
    with pytest.raises(TypeError, match="object arrays"):
        save_checkpoint(tmp_path / "a.npz", model, extra={"o": np.array([None, 1])})
    assert os.listdir(tmp_path) == []


# -------------------------------------------------------------------------------------
# Atomic writes
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch, where):
    path = tmp_path / "ckpt.npz"
    old = _model()
    save_checkpoint(path, old, epoch=1)
    new = _model()
    new.load_state_dict({k: np.ones_like(v) for k, v in new.state_dict().items()})

    def boom(*args, **kwargs):
        raise OSError(f"disk full in {where}")

    if where == "savez":
        real_savez = np.savez

        def savez(file, **arrays):  # write part of the archive, then fail
            real_savez(file, **dict(list(arrays.items())[:3]))
            file.write(b"partial")
            boom()
        monkeypatch.setattr(np, "savez", savez)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, new, epoch=2)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left
    result = load_checkpoint(path)
    assert result["epoch"] == 1
    _assert_weights_equal(result["model"], old)


def test_save_replaces_an_existing_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, Linear(2, 2, seed=0), epoch=1)
    model = Linear(3, 1, seed=1)
    save_checkpoint(path, model, epoch=2)
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    result = load_checkpoint(path)
    assert result["epoch"] == 2
    _assert_weights_equal(result["model"], model)


# -------------------------------------------------------------------------------------
# Errors on load: each a ValueError naming the file
# -------------------------------------------------------------------------------------

@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, _model(), FakeOptimizer(_optimizer_state()), epoch=3)
    return path


def _rewrite(path, target, change):
    """Copy the checkpoint at `path` to `target`, its metadata changed by change(meta),
    or its arrays by change(arrays) when change takes the arrays dict."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__metadata__"].tobytes().decode("utf-8"))
    change(meta, arrays)
    arrays["__metadata__"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(target, **arrays)
    return target


@pytest.mark.parametrize("loader", [load_model, load_checkpoint])
def test_not_a_file(tmp_path, loader):
    """OS errors stay OSErrors: they say nothing about the file's content."""
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        loader(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        loader(tmp_path)


@pytest.mark.parametrize("loader", [load_model, load_checkpoint])
def test_garbage_bytes(tmp_path, loader):
    path = tmp_path / "garbage.npz"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="garbage.npz: not a checkpoint"):
        loader(path)
    npy = tmp_path / "array.npz"  # a lone .npy is not an archive either
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="array.npz: not a checkpoint"):
        loader(npy)


@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_checkpoint(saved, tmp_path, keep):
    data = saved.read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated.npz: not a checkpoint"):
        load_checkpoint(path)


def test_corrupt_array_data(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    weight = _model().state_dict()["3.weight"]
    start = bytes(data).find(weight.tobytes())
    assert start > 0
    data[start + 5] ^= 0xFF
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped.npz: corrupt checkpoint.*model/3.weight"):
        load_model(path)


def test_missing_metadata(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, weight=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="plain.npz: no checkpoint metadata"):
        load_model(path)


def test_unreadable_or_foreign_metadata(saved, tmp_path):
    with np.load(saved, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["__metadata__"] = np.frombuffer(b"{not json", np.uint8)
    np.savez(tmp_path / "badjson.npz", **arrays)
    with pytest.raises(ValueError, match="badjson.npz: unreadable checkpoint metadata"):
        load_model(tmp_path / "badjson.npz")
    target = _rewrite(saved, tmp_path / "foreign.npz",
                      lambda meta, arrays: meta.update(format="something else"))
    with pytest.raises(ValueError, match="foreign.npz: the metadata is not"):
        load_model(target)


def test_unknown_model_type(saved, tmp_path):
    def change(meta, arrays):
        meta["model"]["config"]["layers"][0]["type"] = "Transformer"
    target = _rewrite(saved, tmp_path / "transformer.npz", change)
    with pytest.raises(ValueError, match="transformer.npz: cannot rebuild the model: unknown "
                                         "model type 'Transformer'"):
        load_model(target)


def test_newer_format_version(saved, tmp_path):
    target = _rewrite(saved, tmp_path / "future.npz",
                      lambda meta, arrays: meta.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=f"future.npz: checkpoint format version "
                                         f"{FORMAT_VERSION + 1} is newer"):
        load_checkpoint(target)


def test_missing_weight_or_optimizer_array(saved, tmp_path):
    target = _rewrite(saved, tmp_path / "noweight.npz",
                      lambda meta, arrays: arrays.pop("model/3.bias"))
    with pytest.raises(ValueError, match="noweight.npz: corrupt checkpoint: its weights"):
        load_model(target)
    target = _rewrite(saved, tmp_path / "noopt.npz",
                      lambda meta, arrays: arrays.pop("optimizer/state/1/exp_avg"))
    with pytest.raises(ValueError, match="noopt.npz: corrupt checkpoint: the optimizer"):
        load_checkpoint(target)


def test_architecture_mismatch_with_a_given_model(saved):
    model = Sequential(ln.LSTM(3, 5, 2, bidirectional=True, batch_first=True),
                       Dropout(0.25), LastStep(batch_first=True, bidirectional=True),
                       Linear(10, 2))
    before = model.state_dict()
    with pytest.raises(ValueError, match=r"good.npz: the checkpoint's model does not match "
                                         r"the given Sequential.*0.weight_hh_l0"):
        load_checkpoint(saved, model=model)
    names = Sequential(ln.LSTM(3, 4, 2, bidirectional=True, batch_first=True),
                       LastStep(batch_first=True, bidirectional=True), Linear(8, 2))
    with pytest.raises(ValueError, match=r"missing \['2.bias', '2.weight'\], "
                                         r"unexpected \['3.bias', '3.weight'\]"):
        load_checkpoint(saved, model=names)
    _assert_weights_equal(model, _with_state(model, before))


def _with_state(model, state):
    model.load_state_dict(state)
    return model


def test_failed_optimizer_load_restores_the_model(saved):
    model = _model()
    model.load_state_dict({k: np.zeros_like(v) for k, v in model.state_dict().items()})

    class Strict(FakeOptimizer):
        def load_state_dict(self, state):
            raise KeyError("lr is not a parameter of this optimizer")

    with pytest.raises(ValueError, match="good.npz: the optimizer state does not load"):
        load_checkpoint(saved, model=model, optimizer=Strict())
    assert all(np.all(v == 0) for v in model.state_dict().values())


def test_non_finite_weights_are_refused(saved, tmp_path):
    def change(meta, arrays):
        arrays["model/3.bias"] = np.array([np.nan, 0], np.float32)
    target = _rewrite(saved, tmp_path / "nan.npz", change)
    with pytest.raises(ValueError, match="nan.npz: the weights do not load"):
        load_model(target)


def test_every_member_is_checked_for_integrity(saved):
    """A stored zip (np.savez) whose CRCs test_corrupt_array_data relies on."""
    with zipfile.ZipFile(saved) as zf:
        assert zf.testzip() is None
        assert all(info.CRC for info in zf.infolist())
