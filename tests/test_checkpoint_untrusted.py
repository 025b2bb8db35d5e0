"""`lstm_native.checkpoint` against untrusted files: every malformed file is a
`CheckpointError` found before anything big is allocated or built, whatever its bytes
say; and saves killed mid-write leave no temporary files behind for good."""
from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import uuid
import zipfile
import zlib

import numpy as np
import pytest

import lstm_native as ln
from lstm_native import checkpoint
from lstm_native.checkpoint import (
    DEFAULT_MAX_BYTES,
    CheckpointError,
    load_checkpoint,
    load_model,
    register_module,
    save_checkpoint,
)
from lstm_native.layers import Dropout, LastStep, Linear, Sequential

# A refusal must come before any real work: well under this, and without allocating.
FAST_SECONDS = 0.5
SMALL_PEAK = 32 << 20


def _model():
    return Sequential(ln.LSTM(3, 4, 2, bidirectional=True, batch_first=True, seed=0),
                      Dropout(0.25, seed=3), LastStep(batch_first=True, bidirectional=True),
                      Linear(8, 2, seed=1))


class _Optimizer:
    def __init__(self, state=None):
        self.state = state

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        self.state = state


def _optimizer_state():
    return {"type": "Adam", "hyper": {"lr": 1e-3, "betas": [0.9, 0.999]}, "step": 5,
            "buffers": {"exp_avg.3.bias": np.arange(2, dtype=np.float32)},
            "keys": {1: "one", (2, "b"): np.int64(3)}}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(path, bytes, members) of a checkpoint with every part: model, optimizer, epoch,
    extra; `members` maps each zip member's name to its .npy bytes."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    extra = {"history": {"loss": [1.0, 0.5]}, "mean": np.array([1.5, 2.5]),
             "window": (24, 1), "note": "text"}
    save_checkpoint(path, _model(), _Optimizer(_optimizer_state()), epoch=3, extra=extra)
    with zipfile.ZipFile(path) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    return path, path.read_bytes(), members


def _write_members(path, members: dict, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _metadata(members: dict) -> dict:
    return json.loads(_npy_data(members["__metadata__.npy"]).decode("utf-8"))


def _npy_data(blob: bytes) -> bytes:
    header_len = struct.unpack("<H", blob[8:10])[0]
    return blob[10 + header_len:]


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_with_header(header: str, data: bytes = b"", version=(1, 0)) -> bytes:
    """An .npy blob with any header text (padded as numpy pads it) and any data."""
    text = header.encode("latin1")
    if version == (1, 0):
        pad = -(10 + len(text) + 1) % 64
        return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) + pad + 1) + text
                + b" " * pad + b"\n" + data)
    pad = -(12 + len(text) + 1) % 64
    return (b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text) + pad + 1) + text
            + b" " * pad + b"\n" + data)


def _with_metadata(members: dict, meta) -> dict:
    changed = dict(members)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    changed["__metadata__.npy"] = _npy(np.frombuffer(text.encode("utf-8"), np.uint8))
    return changed


def _refused(path, loader=load_checkpoint, match=None, **kwargs):
    """Assert `loader(path)` raises CheckpointError naming the file, fast and small."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointError) as info:
            loader(path, **kwargs)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{os.fspath(path)}: "), message
    if match is not None:
        assert match in message, message
    assert elapsed < FAST_SECONDS, f"refused after {elapsed:.2f} s: {message}"
    assert peak < SMALL_PEAK, f"refused after allocating {peak >> 20} MiB: {message}"
    return message


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    else:
        assert a == b


def _assert_weights_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


# -------------------------------------------------------------------------------------
# A hand-made zip, for members whose declared sizes lie or that decompress to gigabytes
# -------------------------------------------------------------------------------------

def _raw_zip(entries) -> bytes:
    """A zip archive of (name, method, stored bytes, declared size, crc) entries, the
    headers written as given (zipfile would compress and check them itself)."""
    body, directory = b"", b""
    for name, method, stored, size, crc in entries:
        encoded = name.encode()
        offset = len(body)
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, method, 0, 33,
                            crc, len(stored), size, len(encoded), 0) + encoded + stored
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method,
                                 0, 33, crc, len(stored), size, len(encoded), 0, 0, 0, 0,
                                 0, offset) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(directory), len(body), 0)
    return body + directory + end


def _deflated_zeros(header: bytes, n_mib: int) -> bytes:
    """The raw deflate stream of `header` then `n_mib` MiB of zeros, made in
    milliseconds: after a full flush the compressor starts afresh, so every MiB of zeros
    compresses to the same block, repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    zeros = bytes(1 << 20)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH) == block
    return head + block * n_mib + c.flush()


def _members_as_entries(members: dict):
    return [(name, 0, data, len(data), zlib.crc32(data)) for name, data in members.items()]


# -------------------------------------------------------------------------------------
# The defects found by the audit, one test each
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("member, descr, itemsize, match", [
    ("extra/mean.npy", "|u1", 1, "max_bytes"),
    ("model/3.bias.npy", "<f4", 4, "model/3.bias"),
])
def test_a_zip_bomb_is_refused_without_decompressing_it(good, tmp_path, member, descr,
                                                        itemsize, match):
    """4 MiB on disk, 4 GiB of zeros inflated, its header agreeing with its declared
    size: refused from the header and the size (over max_bytes; not the weight's shape)."""
    _, _, members = good
    # A zip without zip64 records declares at most 4 GiB - 1: fill that with the array.
    header_size = len(_npy_with_header("{'descr': '|u1', 'fortran_order': False, "
                                       "'shape': (4294967295,), }"))
    count = (0xFFFFFFFF - header_size) // itemsize
    header = _npy_with_header(f"{{'descr': '{descr}', 'fortran_order': False, "
                              f"'shape': ({count},), }}")
    assert len(header) == header_size
    bomb = _deflated_zeros(header, 4096)
    assert len(bomb) < 8 << 20
    entries = [e for e in _members_as_entries(members) if e[0] != member]
    entries.append((member, 8, bomb, header_size + count * itemsize, 0))
    path = tmp_path / "bomb.npz"
    path.write_bytes(_raw_zip(entries))
    _refused(path, load_checkpoint, match=match)


def test_a_member_that_inflates_past_its_declared_size_is_not_inflated(good, tmp_path):
    """The sizes and CRC say 80 bytes and the stream holds 1 GiB more: only the 80 bytes
    declared are inflated (and they are the array, so it loads)."""
    path0, _, members = good
    blob = members["extra/mean.npy"]
    bomb = _deflated_zeros(blob, 1024)
    entries = [e for e in _members_as_entries(members) if e[0] != "extra/mean.npy"]
    entries.append(("extra/mean.npy", 8, bomb, len(blob), zlib.crc32(blob)))
    path = tmp_path / "liar.npz"
    path.write_bytes(_raw_zip(entries))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = load_checkpoint(path)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < FAST_SECONDS and peak < SMALL_PEAK, (elapsed, peak)
    _assert_same(result["extra"], load_checkpoint(path0)["extra"])


def _declaring(members: dict, change) -> dict:
    meta = _metadata(members)
    change(meta)
    return _with_metadata(members, meta)


@pytest.mark.parametrize("key, value", [
    ("hidden_size", 6000), ("hidden_size", 10**6), ("num_layers", 10**8),
    ("input_size", 10**12), ("n_threads", 10**6), ("num_layers", True),
])
def test_a_huge_declared_architecture_is_refused_before_building(good, tmp_path, key, value):
    """A 10 KB file declaring a model of gigabytes (or of 10**8 layers): refused from
    the config, its weight members too small, before any weight is drawn."""
    _, _, members = good

    def change(meta):
        meta["model"]["config"]["layers"][0]["config"][key] = value
    path = _write_members(tmp_path / "huge.npz", _declaring(members, change))
    assert path.stat().st_size < 16 << 10
    for loader in (load_model, load_checkpoint):
        _refused(path, loader, match="model")


def test_a_huge_architecture_with_matching_headers_is_refused_by_the_byte_cap(tmp_path):
    """Headers that agree with a 6.4 GB model, in a small file: the cap refuses them."""
    model = ln.LSTM(3, 4, seed=0)
    save_checkpoint(tmp_path / "small.npz", model)
    with zipfile.ZipFile(tmp_path / "small.npz") as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    meta = _metadata(members)
    meta["model"]["config"]["hidden_size"] = 20000
    shapes = {"weight_ih_l0": (80000, 3), "weight_hh_l0": (80000, 20000),
              "bias_ih_l0": (80000,), "bias_hh_l0": (80000,)}
    members = _with_metadata(members, meta)
    for name, shape in shapes.items():
        members[f"model/{name}.npy"] = _npy_with_header(
            f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}")
    path = _write_members(tmp_path / "capped.npz", members)
    message = _refused(path, load_model, match="max_bytes")
    assert str(DEFAULT_MAX_BYTES) in message


def test_max_bytes_refuses_a_real_checkpoint_above_it_and_can_be_raised(good, tmp_path):
    path, data, _ = good
    with pytest.raises(CheckpointError, match="max_bytes=1000"):
        load_model(path, max_bytes=1000)
    with pytest.raises(CheckpointError, match="max_bytes=1000"):
        load_checkpoint(path, max_bytes=1000)
    assert isinstance(load_model(path, max_bytes=len(data)), Sequential)
    with pytest.raises(TypeError, match="max_bytes"):
        load_model(path, max_bytes=1.5)
    with pytest.raises(ValueError, match="max_bytes"):
        load_checkpoint(path, max_bytes=0)


def test_raw_metadata_bytes(good, tmp_path):
    """A metadata member that is not an .npy at all (np.load gave back bytes)."""
    _, _, members = good
    changed = dict(members)
    changed["__metadata__.npy"] = json.dumps(_metadata(members)).encode()
    path = _write_members(tmp_path / "raw.npz", changed)
    _refused(path, load_model, match="__metadata__")


@pytest.mark.parametrize("where", ["extra", "optimizer", "config"])
def test_deeply_nested_metadata(good, tmp_path, where):
    _, _, members = good
    meta = _metadata(members)
    if where == "config":
        text = json.dumps(meta).replace('"stateful": false', '"stateful": ' + "[" * 100000
                                        + "]" * 100000, 1)
    else:
        meta[where] = "DEEP"
        text = json.dumps(meta).replace('"DEEP"', "[" * 100000 + "]" * 100000)
    path = _write_members(tmp_path / "deep.npz", _with_metadata(members, text))
    _refused(path, load_checkpoint)
    # Deeper than the loader follows but shallow enough for json: refused all the same.
    meta = _metadata(members)
    nested = {}
    for _ in range(200):
        nested = {"a": nested}
    if where == "config":
        meta["model"]["config"]["layers"][1]["config"]["p"] = nested
    else:
        meta[where] = {"tree": nested}
    path = _write_members(tmp_path / "deep2.npz", _with_metadata(members, meta))
    _refused(path, load_checkpoint)


def test_deeply_nested_sequentials(tmp_path):
    model = Linear(2, 2, seed=0)
    for _ in range(40):
        model = Sequential(model)
    save_checkpoint(tmp_path / "nest.npz", model)
    _refused(tmp_path / "nest.npz", load_model, match="nest")


@pytest.mark.parametrize("value", [5, "abc", None, [5], ["3.bias", "3.bias"], {"a": 1}])
def test_model_keys_of_the_wrong_type(good, tmp_path, value):
    _, _, members = good
    path = _write_members(tmp_path / "keys.npz",
                          _declaring(members, lambda meta: meta.update(model_keys=value)))
    _refused(path, load_model, match="model_keys")


def _central_record_offsets(data: bytes):
    offset = data.find(b"PK\x01\x02")
    while offset >= 0:
        yield offset
        offset = data.find(b"PK\x01\x02", offset + 4)


@pytest.mark.parametrize("method", [1, 12, 14, 99])
def test_an_unsupported_compression_method(good, tmp_path, method):
    """A byte flip in a method field: shrink, bzip2, lzma, unknown."""
    _, data, _ = good
    data = bytearray(data)
    offset = next(iter(_central_record_offsets(bytes(data))))
    struct.pack_into("<H", data, offset + 10, method)
    path = tmp_path / "method.npz"
    path.write_bytes(bytes(data))
    _refused(path, load_checkpoint, match="compress")


@pytest.mark.parametrize("shift", [1, 1000, 2**31])
def test_a_central_directory_offset_past_its_place(good, tmp_path, shift):
    """zipfile takes the difference as bytes prepended to the archive, and the members'
    local headers then lie before the file's start (a seek there is an OSError)."""
    _, data, _ = good
    data = bytearray(data)
    end = data.rfind(b"PK\x05\x06")
    offset = struct.unpack_from("<L", data, end + 16)[0]
    struct.pack_into("<L", data, end + 16, (offset + shift) % 2**32)
    path = tmp_path / "offset.npz"
    path.write_bytes(bytes(data))
    _refused(path, load_checkpoint)


def test_an_encrypted_member(good, tmp_path):
    _, data, _ = good
    data = bytearray(data)
    for offset in _central_record_offsets(bytes(data)):
        struct.pack_into("<H", data, offset + 8, 1)
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(data))
    _refused(path, load_checkpoint, match="encrypt")


@pytest.mark.parametrize("epoch", ["abc", -1, True, 1.5, float("nan"), [3], 2**64])
def test_an_epoch_that_is_not_a_count(good, tmp_path, epoch):
    _, _, members = good
    path = _write_members(tmp_path / "epoch.npz",
                          _declaring(members, lambda meta: meta.update(epoch=epoch)))
    _refused(path, load_checkpoint, match="epoch")


# -------------------------------------------------------------------------------------
# Array headers, members and the rest of the metadata
# -------------------------------------------------------------------------------------

@pytest.mark.parametrize("header, data", [
    ("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
    ("{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
    ("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", b"\0" * 8),
    ("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (2,), }", b"\0" * 16),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", b"\0" * 8),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", b""),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, 0), }" % (2**62, 2**62), b""),
    ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", b"\0" * 8),
    ("{'descr': '<f4', 'shape': (2,), }", b"\0" * 8),
    ("__import__('os').system('false')", b""),
    ("[" * 5000 + "]" * 5000, b""),
])
def test_crafted_array_headers(good, tmp_path, header, data):
    _, _, members = good
    for member in ("model/3.bias.npy", "extra/mean.npy", "optimizer/buffers/exp_avg.3.bias.npy"):
        changed = dict(members)
        changed[member] = _npy_with_header(header, data)
        path = _write_members(tmp_path / "header.npz", changed)
        _refused(path, load_checkpoint, match=member[:-len(".npy")])


def test_a_version_2_header_is_read(good, tmp_path):
    _, _, members = good
    changed = dict(members)
    blob = members["model/3.bias.npy"]
    header = blob[10:10 + struct.unpack("<H", blob[8:10])[0]].decode("latin1").strip()
    changed["model/3.bias.npy"] = _npy_with_header(header, _npy_data(blob), version=(2, 0))
    path = _write_members(tmp_path / "v2.npz", changed)
    _assert_weights_equal(load_model(path), _model())


def test_a_compressed_checkpoint_is_read(good, tmp_path):
    _, _, members = good
    path = _write_members(tmp_path / "deflated.npz", members, zipfile.ZIP_DEFLATED)
    _assert_weights_equal(load_model(path), _model())


def test_duplicate_member_names(good, tmp_path):
    _, _, members = good
    path = tmp_path / "twice.npz"
    path.write_bytes(_raw_zip(_members_as_entries(members)
                              + _members_as_entries({"model/3.bias.npy": _npy(np.zeros(2))})))
    _refused(path, load_model, match="model/3.bias")


@pytest.mark.parametrize("change, match", [
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(dtype="float16"),
     "dtype"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(bias=1), "bias"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(seed=1), "seed"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].pop("input_size"),
     "input_size"),
    (lambda meta: meta["model"]["config"]["layers"][1]["config"].update(p=float("nan")),
     "p"),
    (lambda meta: meta["model"]["config"]["layers"][1]["config"].update(p=1), "p"),
    (lambda meta: meta["model"]["config"].update(layers=[]), "layers"),
    (lambda meta: meta["model"]["config"].update(layers=[None]), "layers"),
    (lambda meta: meta["model"].update(config=[]), "config"),
    (lambda meta: meta["model"].update(type=["Sequential"]), "type"),
    (lambda meta: meta.update(model="Sequential"), "model"),
    (lambda meta: meta.update(format_version=True), "format_version"),
    (lambda meta: meta.update(format_version=0), "format_version"),
    (lambda meta: meta.update(extra=[1, 2]), "extra"),
    (lambda meta: meta.update(extra={"a": {"__array__": 5}}), "extra"),
    (lambda meta: meta.update(extra={"a": {"__array__": "extra/absent"}}), "extra/absent"),
    (lambda meta: meta.update(extra={"a": {"__array__": "extra/mean", "b": 1}}), "extra"),
    (lambda meta: meta.update(extra={"a": {"__array__": "extra/mean", "scalar": True}}),
     "extra/mean"),
    (lambda meta: meta.update(extra={"__items__": [[{"a": 1}, 2]]}), "extra"),
    (lambda meta: meta.update(extra={"__items__": [[1]]}), "extra"),
    (lambda meta: meta.update(optimizer={"__tuple__": 5}), "optimizer"),
    (lambda meta: meta.pop("epoch"), "epoch"),
])
def test_crafted_metadata(good, tmp_path, change, match):
    _, _, members = good
    path = _write_members(tmp_path / "meta.npz", _declaring(members, change))
    _refused(path, load_checkpoint, match=match)


def test_a_model_in_the_wrong_dtype_is_refused(good, tmp_path):
    """The config says float64 and the weights are float32."""
    _, _, members = good

    def change(meta):
        for layer in meta["model"]["config"]["layers"]:
            if "dtype" in layer["config"]:
                layer["config"]["dtype"] = "float64"
    path = _write_members(tmp_path / "f64.npz", _declaring(members, change))
    _refused(path, load_model, match="float32")


def test_errors_are_checkpoint_errors_and_value_errors():
    assert issubclass(CheckpointError, ValueError)
    assert ln.CheckpointError is CheckpointError and "CheckpointError" in ln.__all__


@pytest.mark.parametrize("loader", [load_model, load_checkpoint])
def test_os_errors_stay_os_errors(tmp_path, loader):
    with pytest.raises(FileNotFoundError):
        loader(tmp_path / "missing.npz")
    with pytest.raises(IsADirectoryError):
        loader(tmp_path)


def test_a_registered_class_with_a_shape_rule_is_checked_before_it_is_built(tmp_path):
    built = []

    class Wide(Linear):
        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

        @classmethod
        def parameter_shapes(cls, config):
            return {"weight": (config["out_features"], config["in_features"]),
                    "bias": (config["out_features"],)}

    register_module(Wide)
    try:
        save_checkpoint(tmp_path / "wide.npz", Wide(2, 3, seed=0))
        built.clear()
        assert isinstance(load_model(tmp_path / "wide.npz"), Wide) and len(built) == 1
        with zipfile.ZipFile(tmp_path / "wide.npz") as zf:
            members = {info.filename: zf.read(info) for info in zf.infolist()}
        built.clear()
        path = _write_members(tmp_path / "wider.npz", _declaring(
            members, lambda meta: meta["model"]["config"].update(out_features=10**5)))
        _refused(path, load_model, match="weight")
        assert built == []
    finally:
        checkpoint._REGISTRY.pop("Wide")


# -------------------------------------------------------------------------------------
# 1,000 corruptions: each loads the original or is a CheckpointError
# -------------------------------------------------------------------------------------

_VALUES = ["abc", "", -1, 0, 1, 1.5, float("nan"), float("inf"), True, False, None, [],
           {}, [1, 2], {"a": 1}, 10**6, 10**100, 2**31, 2**64, "float64", "Sequential",
           {"__array__": "model/3.bias"}, {"__array__": 5}, {"__tuple__": [1]},
           {"__items__": [[1, 2]]}, [[[[[]]]]], "x" * 1000]


def _json_paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, path + (i,))


def _crafted_header(rng) -> bytes:
    descr = rng.choice(["'<f4'", "'<f8'", "'>f4'", "'|O'", "'<U3'", "'|V8'", "'<i8'",
                        "'|b1'", "'<c16'", "'<M8[s]'", "[('a', '<f4')]", "'<f2'", "5",
                        "'float32'", "('<f4', (2,))"])
    shape = rng.choice(["()", "(2,)", "(8, 3)", "(-1,)", "(1099511627776,)", "(0,)", "(2, 'a')",
                        "[2]", "(1,) * 40", "(2147483648, 2147483648)", "None"])
    fortran = rng.choice(["False", "True", "0", "'no'"])
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    # Never the size a weight of the good model needs: a crafted member must not load.
    n = int(rng.choice([0, 5, 9, 17, 97, 193]))
    return _npy_with_header(header, rng.bytes(n), version=(1, 0) if rng.random() < 0.8
                            else (2, 0))


def _corrupt(rng, data: bytes, members: dict, tmp_path):
    """A corrupted copy of the good checkpoint, and whether only bytes the loader must
    notice or ignore changed (the rest are structurally valid crafted files)."""
    names = list(members)
    kind = rng.integers(11)
    path = tmp_path / "corrupt.npz"
    if kind == 0:
        path.write_bytes(data[:rng.integers(len(data))])
        return path, "bytes"
    if kind in (1, 2):
        changed = bytearray(data)
        for _ in range(1 if kind == 1 else rng.integers(2, 9)):
            changed[rng.integers(len(data))] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(changed))
        return path, "bytes"
    if kind == 3:  # a size, offset or count field of the directory or end record
        changed = bytearray(data)
        width = int(rng.choice([2, 4]))
        at = len(data) - int(rng.integers(width, 400))
        changed[at:at + width] = rng.bytes(width)
        path.write_bytes(bytes(changed))
        return path, "bytes"
    changed = dict(members)
    if kind == 4:
        del changed[names[rng.integers(len(names))]]
    elif kind == 5:
        old = names[rng.integers(len(names))]
        new = rng.choice([names[rng.integers(len(names))], old + "x", old[:-4],
                          "model/zz.npy", "__metadata__.npy"])
        changed = {(new if k == old else k): v for k, v in changed.items()}
    elif kind == 6:  # two members of different sizes (equal ones would be valid)
        a = names[rng.integers(len(names))]
        others = [n for n in names if len(members[n]) != len(members[a])]
        b = others[rng.integers(len(others))]
        changed[a], changed[b] = changed[b], changed[a]
    elif kind == 7:
        changed[names[rng.integers(len(names))]] = _crafted_header(rng)
    else:
        meta = _metadata(members)
        paths = [p for p in _json_paths(meta) if p]
        where = paths[rng.integers(len(paths))]
        parent = meta
        for k in where[:-1]:
            parent = parent[k]
        action = rng.integers(4)
        if action == 0 and isinstance(parent, dict):
            del parent[where[-1]]
        elif action == 1 and isinstance(parent, dict):
            parent["unknown_key"] = 1
        else:
            value = _VALUES[rng.integers(len(_VALUES))]
            parent[where[-1]] = json.loads(json.dumps(value))
        changed = _with_metadata(members, meta)
    _write_members(path, changed)
    return path, "crafted"


def test_a_thousand_corruptions_load_the_original_or_raise_checkpoint_error(good, tmp_path):
    _, data, members = good
    original = load_checkpoint(good[0])
    rng = np.random.default_rng(20261130)
    outcomes = {"loaded": 0, "refused": 0}
    start = time.perf_counter()
    for case in range(1000):
        path, kind = _corrupt(rng, data, members, tmp_path)
        loader = load_model if case % 4 == 0 else load_checkpoint
        try:
            result = loader(path)
        except CheckpointError as e:
            assert str(e).startswith(f"{path}: "), f"case {case}: {e}"
            outcomes["refused"] += 1
            continue
        except Exception as e:  # noqa: BLE001 - the point: nothing else may escape
            raise AssertionError(f"case {case} ({kind}): {type(e).__name__}: {e}") from e
        outcomes["loaded"] += 1
        model = result if loader is load_model else result["model"]
        _assert_weights_equal(model, original["model"])
        if loader is load_checkpoint:
            assert result["epoch"] is None or (type(result["epoch"]) is int
                                               and result["epoch"] >= 0)
            assert result["extra"] is None or isinstance(result["extra"], dict)
            if kind == "bytes":  # the content is checksummed: all of it or nothing
                assert result["epoch"] == original["epoch"]
                _assert_same(result["extra"], original["extra"])
                _assert_same(result["optimizer_state"], original["optimizer_state"])
    assert outcomes["refused"] > 500 and outcomes["loaded"] > 10, outcomes
    assert time.perf_counter() - start < 10


# -------------------------------------------------------------------------------------
# Temporary files of killed saves
# -------------------------------------------------------------------------------------

_KILLED_SAVER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from lstm_native import Linear, save_checkpoint

    real_savez = np.savez

    def savez(file, **arrays):  # half the archive, then hang until killed
        real_savez(file, **dict(list(arrays.items())[:1]))
        file.flush()
        print("writing", flush=True)
        time.sleep(60)

    np.savez = savez
    save_checkpoint(sys.argv[1], Linear(2, 2))
""")


def _temp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL and pid checks are POSIX")
def test_a_killed_save_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, Linear(2, 2, seed=0), epoch=1)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    left = _temp_files(tmp_path)
    assert len(left) == 1 and left[0].startswith(f".ckpt.npz.{proc.pid}."), left
    assert load_checkpoint(path)["epoch"] == 1  # the old file is intact

    # A save in progress in a live process (ours, under a made-up name), another
    # target's dead temp file and an unrelated file are left alone.
    live = f".ckpt.npz.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    other = f".other.npz.{proc.pid}.{uuid.uuid4().hex}.tmp"
    for name in (live, other, "ckpt.npz.notes.tmp"):
        (tmp_path / name).write_bytes(b"partial")
    save_checkpoint(path, Linear(2, 2, seed=1), epoch=2)
    assert _temp_files(tmp_path) == sorted([live, other, "ckpt.npz.notes.tmp"])
    assert load_checkpoint(path)["epoch"] == 2


def test_the_temp_file_is_named_after_the_writer(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    save_checkpoint(tmp_path / "m.npz", Linear(2, 2))
    assert len(seen) == 1 and seen[0].startswith(f".m.npz.{os.getpid()}.")
    assert seen[0].endswith(".tmp")


# -- the random generators' states (rng_states) ------------------------------------------

def _rng(meta):
    return meta["rng_states"]["1"]  # the Dropout's


@pytest.mark.parametrize("change, match", [
    (lambda meta: meta.update(rng_states=[1]), "rng_states"),
    (lambda meta: meta.update(rng_states={"1": None}), "bit generators"),
    (lambda meta: _rng(meta).update(bit_generator="os.system"), "bit generators"),
    (lambda meta: _rng(meta).update(bit_generator=["PCG64"]), "bit generators"),
    (lambda meta: _rng(meta)["state"].update(state=2**128), "'state'"),
    (lambda meta: _rng(meta)["state"].update(inc=-1), "'inc'"),
    (lambda meta: _rng(meta)["state"].update(inc=1.5), "'inc'"),
    (lambda meta: _rng(meta)["state"].update(inc=True), "'inc'"),
    (lambda meta: _rng(meta)["state"].update(inc="7"), "'inc'"),
    (lambda meta: _rng(meta).update(has_uint32=2), "'has_uint32'"),
    (lambda meta: _rng(meta).pop("uinteger"), "keys"),
    (lambda meta: _rng(meta).update(more=1), "keys"),
    (lambda meta: _rng(meta).update(state=[1, 2]), "keys"),
    (lambda meta: _rng(meta).update(bit_generator="MT19937"), "keys"),
    (lambda meta: meta["rng_states"].update({"1": {"bit_generator": "MT19937", "state": {
        "key": [1] * 623, "pos": 0}}}), "'key'"),
    (lambda meta: meta["rng_states"].update({"0": _rng(meta)}), "'0'"),   # the LSTM draws nothing
    (lambda meta: meta["rng_states"].update({"9": _rng(meta)}), "'9'"),
    (lambda meta: meta["rng_states"].update({"": _rng(meta)}), "''"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(dropout=1.5),
     "dropout"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(dropout="0.3"),
     "dropout"),
    (lambda meta: meta["model"]["config"]["layers"][0]["config"].update(dropout=float("nan")),
     "dropout"),
])
def test_crafted_generator_states(good, tmp_path, change, match):
    """Each saved generator state is checked against the layout of the numpy bit
    generator it names, and must belong to a module that draws, before anything is
    built or changed."""
    _, _, members = good
    assert set(_metadata(members)["rng_states"]) == {"1"}
    path = _write_members(tmp_path / "rng.npz", _declaring(members, change))
    _refused(path, load_model, match=match)
    model = _model()
    before = model.state_dict(), model.layers[1].rng_state()
    _refused(path, load_checkpoint, model=model)
    assert model.layers[1].rng_state() == before[1]
    assert all(np.array_equal(model.state_dict()[k], v) for k, v in before[0].items())


@pytest.mark.parametrize("name", sorted(checkpoint._RNG_LAYOUTS))
def test_every_numpy_bit_generator_round_trips(tmp_path, name):
    """A layer given a state of any of numpy's bit generators saves and loads it."""
    model = Sequential(ln.RNN(2, 3, 2, dropout=0.5, seed=0), Dropout(0.5, seed=1))
    other = np.random.Generator(getattr(np.random, name)(5))
    other.random(3)
    model.layers[1].set_rng_state(other.bit_generator.state)
    save_checkpoint(tmp_path / "m.npz", model)
    restored = load_model(tmp_path / "m.npz")
    x = np.ones((4, 2, 2))
    assert np.array_equal(restored(x), model(x))


def test_an_older_file_without_generator_states_loads(good, tmp_path):
    """Files of before rng_states (and of models that draw nothing) load, the
    generators left at their seeds; and one without `dropout` in its config means 0."""
    _, _, members = good

    def change(meta):
        meta.pop("rng_states")
        meta["model"]["config"]["layers"][0]["config"].pop("dropout")
    path = _write_members(tmp_path / "old.npz", _declaring(members, change))
    model = load_model(path)
    assert model.layers[0].dropout == 0.0
    assert model.layers[1].rng_state() == Dropout(0.25, seed=3).rng_state()
