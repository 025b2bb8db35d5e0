"""Quantized models through checkpoints: they round-trip bit for bit, and a file's
quantized members are checked as strictly as float ones (int8 with float32 scales, or
uint16 bfloat16 patterns, exactly where a quantized layer's config declares them)."""
from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest

import lstm_native as ln
from lstm_native.checkpoint import CheckpointError


def _model():
    return ln.Sequential(ln.GRU(3, 12, num_layers=2, bidirectional=True, batch_first=True,
                                seed=0),
                         ln.LastStep(batch_first=True, bidirectional=True),
                         ln.Linear(24, 2, seed=1)).eval()


@pytest.fixture(params=["int8", "bfloat16"])
def saved(request, tmp_path):
    q = ln.quantize(_model(), request.param)
    path = tmp_path / f"{request.param}.npz"
    ln.save_checkpoint(path, q)
    return q, path


def _members(path) -> dict:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write(path, members: dict):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _metadata(members: dict) -> dict:
    blob = members["__metadata__.npy"]
    header_len = struct.unpack("<H", blob[8:10])[0]
    return json.loads(blob[10 + header_len:].decode("utf-8"))


def _with_metadata(members: dict, meta: dict) -> dict:
    return {**members, "__metadata__.npy": _npy(np.frombuffer(json.dumps(meta).encode(),
                                                              np.uint8))}


def test_quantized_models_round_trip_bit_for_bit(saved, tmp_path):
    q, path = saved
    loaded = ln.load_model(path)
    assert repr(loaded) == repr(q) and not loaded.training
    x = np.random.default_rng(0).standard_normal((5, 8, 3))
    lengths = np.array([8, 2, 5, 1, 8])
    np.testing.assert_array_equal(loaded(x, lengths=lengths), q(x, lengths=lengths))
    for name, value in q.state_dict().items():
        assert loaded.state_dict()[name].dtype == value.dtype
        np.testing.assert_array_equal(loaded.state_dict()[name], value)
    # load_checkpoint into a quantized model of the same architecture
    other = ln.quantize(ln.Sequential(ln.GRU(3, 12, num_layers=2, bidirectional=True,
                                             batch_first=True, seed=5),
                                      ln.LastStep(batch_first=True, bidirectional=True),
                                      ln.Linear(24, 2, seed=6)), q.layers[0].precision)
    ln.load_checkpoint(path, other)
    np.testing.assert_array_equal(other(x), q(x))


def test_a_float_model_cannot_take_quantized_members(saved, tmp_path):
    q, path = saved
    members = _members(path)
    meta = _metadata(members)
    meta["model"] = {"type": "Sequential", "config": _model().get_config()}
    meta["model_keys"] = list(_model().state_dict())
    floats = {f"model/{k}.npy": _npy(v) for k, v in _model().state_dict().items()}
    # The float model's members replaced by the quantized ones of the same names.
    for name in floats:
        if name in members:
            floats[name] = members[name]
    bad = _write(tmp_path / "float.npz", {**_with_metadata(members, meta), **floats})
    with pytest.raises(CheckpointError, match="its model.s config says float32"):
        ln.load_model(bad)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.astype(np.float32), "holds float32"),
    (lambda a: a[:-1], "has shape"),
])
def test_a_quantized_weight_of_the_wrong_dtype_or_shape_is_refused(saved, tmp_path, change,
                                                                     match):
    q, path = saved
    members = _members(path)
    key = "model/0.weight_hh_l1_reverse.npy"
    value = np.load(io.BytesIO(members[key]))
    bad = _write(tmp_path / "bad.npz", {**members, key: _npy(change(value))})
    with pytest.raises(CheckpointError, match=match):
        ln.load_model(bad)


def test_bad_values_in_quantized_members_are_refused(saved, tmp_path):
    q, path = saved
    members = _members(path)
    precision = q.layers[0].precision
    if precision == "int8":
        key, bad_value = "model/2.weight_scale.npy", np.zeros(2, np.float32)
        match = "scale that is not > 0"
    else:
        value = np.load(io.BytesIO(members["model/2.weight.npy"]))
        bad_value = value.copy()
        bad_value[0, 0] = 0x7FC0          # a NaN pattern
        key, match = "model/2.weight.npy", "bfloat16 pattern"
    bad = _write(tmp_path / "bad.npz", {**members, key: _npy(bad_value)})
    with pytest.raises(CheckpointError, match=match):
        ln.load_model(bad)
    if precision == "bfloat16":
        bad_value[0, 0] = 0x0001          # a subnormal pattern
        bad = _write(tmp_path / "sub.npz", {**members, key: _npy(bad_value)})
        with pytest.raises(CheckpointError, match="bfloat16 pattern"):
            ln.load_model(bad)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(precision="int4"), "'int8' or 'bfloat16'"),
    (lambda c: c["float"].update(type="LSTM"), "quantized GRU must describe"),
    (lambda c: c["float"]["config"].update(hidden_size=10**6), "more than 1073741824 bytes"),
    (lambda c: c["float"]["config"].update(hidden_size=0), "hidden_size"),
    (lambda c: c.pop("float"), "lacks 'float'"),
])
def test_a_bad_quantized_config_is_refused_before_building(saved, tmp_path, change, match):
    q, path = saved
    members = _members(path)
    meta = _metadata(members)
    change(meta["model"]["config"]["layers"][0]["config"])
    bad = _write(tmp_path / "bad.npz", _with_metadata(members, meta))
    with pytest.raises(CheckpointError, match=match):
        ln.load_model(bad)


def test_a_quantized_lstm_with_a_variant_is_refused(tmp_path):
    q = ln.quantize(ln.LSTM(3, 8, seed=0), "int8")
    path = tmp_path / "q.npz"
    ln.save_checkpoint(path, q)
    members = _members(path)
    meta = _metadata(members)
    meta["model"]["config"]["float"]["config"]["peepholes"] = True
    bad = _write(tmp_path / "bad.npz", _with_metadata(members, meta))
    with pytest.raises(CheckpointError, match="no quantized kernel"):
        ln.load_model(bad)
