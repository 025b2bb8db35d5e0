"""What every model building block shares: named parameters, their gradients, state_dict
and load_state_dict, and the train/eval switch."""
from __future__ import annotations

import numpy as np

from ._validation import FLOAT_DTYPES


class Module:
    """Base of the building blocks: parameters by PyTorch's names, gradients, modes.

    Parameters live in `parameters()` (the arrays the model computes with) and their
    gradients in `grads` (same keys and shapes); `backward` adds into `grads`.
    """

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype
        self._params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def _add_parameter(self, name: str, value: np.ndarray) -> None:
        self._params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros_like(self._params[name])

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - every block defines it
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor's arguments as a JSON-ready dict: `type(self)(**config)` builds
        the same architecture (with fresh weights)."""
        raise NotImplementedError(f"{type(self).__name__} does not describe its configuration")

    def parameters(self) -> dict[str, np.ndarray]:
        """The live parameter arrays by name (updating them in place updates the model).

        Returns
        -------
        dict of str to numpy.ndarray
            Same keys as `state_dict()`; the arrays themselves, not copies.
        """
        return dict(self._params)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter, under PyTorch's names and shapes.

        Returns
        -------
        dict of str to numpy.ndarray
        """
        return {name: p.copy() for name, p in self._params.items()}

    def load_state_dict(self, state_dict) -> None:
        """Copy parameters in from a dict such as `state_dict()` (or a PyTorch one).

        Every name and shape is checked before anything is written, so a failed load
        leaves the model as it was.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            Exactly this model's parameter names, each of the same shape, float32 or
            float64 (converted to the model's dtype), all values finite.

        Raises
        ------
        KeyError
            A parameter is missing or an unexpected name is present.
        ValueError
            A shape differs or a value is not finite.
        TypeError
            A value is not a float array.
        """
        names = set(self._params)
        given = set(state_dict)
        if names != given:
            missing = sorted(names - given)
            unexpected = sorted(given - names)
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing {missing}, unexpected {unexpected}"
            )
        loaded = {}
        for name, p in self._params.items():
            value = state_dict[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.dtype not in FLOAT_DTYPES:
                raise TypeError(
                    f"state_dict[{name!r}] must be float32 or float64 of shape {p.shape}, "
                    f"got dtype {value.dtype}"
                )
            if value.shape != p.shape:
                raise ValueError(
                    f"state_dict[{name!r}] must have shape {p.shape}, got {value.shape}"
                )
            # Finite after conversion: a float64 1e300 would become inf in float32.
            with np.errstate(over="ignore", invalid="ignore"):
                value = value.astype(self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(
                    f"state_dict[{name!r}] holds a value that is not finite in "
                    f"{self.dtype} (nan, inf or out of range)"
                )
            loaded[name] = value
        for name, value in loaded.items():
            np.copyto(self._params[name], value)

    def zero_grad(self) -> None:
        """Set every gradient in `grads` to zero."""
        for g in self.grads.values():
            g.fill(0)

    def train(self, mode: bool = True):
        """Training mode: forward keeps what backward needs. Returns self."""
        self.training = bool(mode)
        if not self.training:
            self._drop_cache()
        return self

    def eval(self):
        """Inference mode: forward keeps only the running state; backward raises. Returns self."""
        return self.train(False)

    def _drop_cache(self) -> None:
        """Forget what the last forward kept for backward."""
