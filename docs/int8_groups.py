"""The int8 LSTM's largest output difference from float32 with the activations quantized
per row (what `lstm_native.quantize` does) and, for comparison, per group of G inputs
(docs/performance.md, "int8 accuracy").

    python docs/int8_groups.py                  # A-D, seeds 0-4, rows and groups of 64, 32

The model is an `lstm_native.LSTM` with torch's default initialisation (seed s) on
N(0, 1) inputs (seed s + 1), as in tests/test_quantize.py. The int8 runs use the math
of `lstm_native.reference.quantized` with its product swapped: per row it is the
reference's (the kernels give the same bits); per group, each group of G consecutive
inputs of a row gets its own scale and zero point and its own exact integer sum, and
the groups' dequantised sums are added in float64. The script is not part of the
package.
"""
from __future__ import annotations

import argparse

import numpy as np

import lstm_native as ln
from lstm_native.reference import quantized as ref

STANDARD = {"A": (64, 25, 512, 512), "B": (32, 150, 256, 256), "C": (16, 50, 1024, 1024),
            "D": (64, 50, 500, 500)}


def _exact_sums(q, zero, w_q):
    """Σ_k q[k]·Wq[j, k] − z·Σ_k Wq[j, k] per row and column. float64 BLAS is exact
    here (every sum is far below 2^53) and much faster than integer matmul."""
    wq = w_q.astype(np.float64)
    return q.astype(np.float64) @ wq.T - zero[:, None].astype(np.float64) * wq.sum(1)


def per_row(a, w_q, w_scale):
    """The reference's `matmul_int8`."""
    q, scale, zero = ref.quantize_rows_int8(a)
    out = _exact_sums(q, zero, w_q).astype(np.int32).astype(np.float32) * scale[:, None]
    return out * np.asarray(w_scale, np.float32)[None, :]


def per_group(size):
    """A `matmul_int8` with a scale and zero point per group of `size` inputs."""
    def matmul(a, w_q, w_scale):
        a = np.asarray(a, np.float32)
        out = np.zeros((a.shape[0], w_q.shape[0]))
        for g in range(0, a.shape[1], size):
            q, scale, zero = ref.quantize_rows_int8(a[:, g:g + size])
            out += _exact_sums(q, zero, w_q[:, g:g + size]) * scale[:, None]
        return (out * w_scale[None, :]).astype(np.float32)
    return matmul


def reference_layers(model):
    params = model.parameters()
    bias, _ = model._kernel_biases("_l0")
    return [{"w_ih": ref.quantize_weight(params["weight_ih_l0"], "int8"),
             "w_hh": ref.quantize_weight(params["weight_hh_l0"], "int8"),
             "b": bias.astype(np.float32)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="ABCD")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--groups", default="64,32")
    args = parser.parse_args()
    products = {"row": per_row} | {f"group {g}": per_group(int(g))
                                   for g in args.groups.split(",")}
    print("| cfg | " + " | ".join(products) + " |")
    print("|---|" + "--:|" * len(products))
    for cfg in args.configs:
        B, T, I, H = STANDARD[cfg]
        errors = {name: [] for name in products}
        for seed in range(args.seeds):
            model = ln.LSTM(I, H, seed=seed).eval()
            x = np.random.default_rng(seed + 1).standard_normal((T, B, I)).astype(np.float32)
            want = model(x)[0]
            layers, h0 = reference_layers(model), np.zeros((1, B, H), np.float32)
            for name, product in products.items():
                ref.matmul_int8 = product   # what ref.product calls
                out, _ = ref.quantized_forward("lstm", x, layers, h0, h0, precision="int8")
                errors[name].append(float(np.abs(out - want).max()))
        print(f"| {cfg} | " + " | ".join(
            f"{np.median(e):.2e} [{min(e):.2e}, {max(e):.2e}]" for e in errors.values()) + " |",
            flush=True)


if __name__ == "__main__":
    main()
