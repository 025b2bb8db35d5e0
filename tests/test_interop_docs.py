"""docs/interop.md's examples run as written (in a directory of their own: they write
files), each where its frameworks are installed."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "interop.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
# What each example imports beyond numpy and lstm_native.
NEEDS = {"keras": ("keras", "torch"), "onnx": ("onnx", "onnxruntime", "torch"),
         "torch": ("torch",)}


def _needs(code: str) -> tuple:
    for bridge in ("keras", "onnx", "torch"):
        if f"lstm_native.{bridge}" in code or f"lstm_native import {bridge}" in code:
            return NEEDS[bridge]
    return ()


def test_the_doc_has_an_example_per_bridge():
    assert {_needs(code) for code in BLOCKS} >= set(NEEDS.values())


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_example_runs(code, tmp_path, monkeypatch):
    for module in _needs(code):
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__main__"})
