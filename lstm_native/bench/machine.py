"""The machine and settings a run's figures depend on, as a reader needs them to compare.

Nothing here sets ``OPENBLAS_CORETYPE`` or an OpenMP variable: OpenBLAS reads the former
when numpy and scipy load, before this module runs, and lstm_native leaves the OpenMP ones
to the user, so the tool only reports them (and what OpenBLAS picked).
"""
from __future__ import annotations

import importlib
import os
import platform

import numpy as np
from threadpoolctl import threadpool_info

import lstm_native as ln

__all__ = ["kernel_module", "simd_level", "openmp_runtimes", "machine_info"]


def optional_import(name: str):
    """The module, or None when it is not installed or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - a broken install is as good as a missing one here
        return None


def kernel_module():
    """lstm_native's compiled driver, ``lstm_native._recurrent``, or None when it does
    not load (a version of the package that predates it)."""
    return optional_import("lstm_native._recurrent")


def simd_level() -> str:
    """The SIMD level lstm_native's kernels picked at load time ("avx512", "avx2",
    "generic"), or "unknown" for a version that does not say."""
    fn = getattr(kernel_module(), "simd_level", None)
    return str(fn()) if callable(fn) else "unknown"


def _openmp() -> str:
    fn = getattr(ln, "openmp_enabled", None)
    if not callable(fn):
        return "unknown"
    return "on" if fn() else "off"


def _quantized_kernels() -> str:
    """The kernels `lstm_native.quantize`'s models run here, or "none" for a version
    without them."""
    fn = getattr(optional_import("lstm_native.quantization"), "kernels", None)
    if not callable(fn):
        return "none"
    found = fn()
    return f"int8 {found['int8']}, bfloat16 {found['bfloat16']}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def openmp_runtimes() -> list[str]:
    """The OpenMP runtimes loaded in this process (from ``/proc/self/maps``)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    names = ("libgomp", "libiomp", "libomp")
    return sorted(p for p in paths if os.path.basename(p).startswith(names))


def _blas_libraries() -> list[str]:
    """numpy's and scipy's BLAS: version and the kernels OpenBLAS picked."""
    found = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        path = lib.get("filepath", "")
        owner = ("numpy" if "numpy" in path else "scipy" if "scipy" in path
                 else os.path.basename(path))
        arch = lib.get("architecture")
        found.append(f"{owner}: {lib.get('internal_api')} {lib.get('version')}"
                     + (f" ({arch} kernels)" if arch else ""))
    return found


def machine_info() -> dict:
    """What a reader needs to reproduce or compare the figures.

    Returns
    -------
    dict
        CPU model, cores, OS, Python, library versions, lstm_native's SIMD level,
        OpenMP and quantized kernels, the BLAS libraries loaded (with the kernels
        OpenBLAS picked), the value ``OPENBLAS_CORETYPE`` had, and the OpenMP wait
        policy (libgomp's default unless the user set one; torch and lstm_native share
        the runtime) and runtimes loaded.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable cores": usable,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "(unset)"),
        "lstm_native": f"{getattr(ln, '__version__', '?')} ({os.path.dirname(ln.__file__)})",
        "lstm_native SIMD": simd_level(),
        "lstm_native OpenMP": _openmp(),
        "lstm_native quantized": _quantized_kernels(),
        "numpy": np.__version__,
    }
    scipy = optional_import("scipy")
    if scipy is not None:
        info["scipy"] = scipy.__version__
    info["BLAS"] = "; ".join(_blas_libraries()) or "none found"
    torch = optional_import("torch")
    if torch is not None:
        onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
        info["torch"] = f"{torch.__version__} (oneDNN {'on' if onednn else 'off'})"
    ort = optional_import("onnxruntime")
    if ort is not None:
        onnx = optional_import("onnx")
        info["onnxruntime"] = ort.__version__ + (f" (onnx {onnx.__version__})" if onnx else "")
    info["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
    if "GOMP_SPINCOUNT" in os.environ:
        info["GOMP_SPINCOUNT"] = os.environ["GOMP_SPINCOUNT"]
    info["OpenMP runtimes"] = ", ".join(openmp_runtimes()) or "none loaded"
    return info
