"""Concrete inputs for a network: sizes for its symbols, random values away from ReLU kinks."""
import numpy as np
import sympy as sp

from .recursion import Spec, forward

KINKED = ("relu", "leaky_relu")
MARGIN = 1e-3  # every pre-activation of a relu-type unit is drawn with |z| ≥ MARGIN


def dimensions(network, width=3, samples=3):
    """{size symbol: int}: every symbolic layer size set to `width`, the number of samples m to `samples`."""
    dims = {s: width for n in network.sizes for s in sp.sympify(n, strict=True).free_symbols}
    dims.update({s: samples for s in sp.sympify(network.m, strict=True).free_symbols})
    return dims


def shapes(network, dims):
    """{"X": shape, "Y": shape, "W1": shape, ...} at the given sizes."""
    def shape(M):
        return tuple(int(sp.sympify(k, strict=True).xreplace(dims)) for k in M.shape)
    return {"X": shape(network.X), "Y": shape(network.Y), **{P.name: shape(P) for P in network.parameters}}


def scalars(network, value=0.1):
    """Values for the symbolic scalars of a network (a symbolic weight decay λ)."""
    return {str(s): value for s in sp.sympify(network.weight_decay, strict=True).free_symbols}


def targets(spec, shape, rng):
    """Y valid for the loss: probability vectors per sample for softmax + cross-entropy, else in (0.05, 0.95)."""
    if spec.loss == "softmax_ce" and spec.activations[-1] == "softmax":
        Y = rng.uniform(0.0, 1.0, size=shape) ** 4
        axis = 1 if spec.layout == "AW" else 0
        return Y / Y.sum(axis=axis, keepdims=True)
    return rng.uniform(0.05, 0.95, size=shape)


def draw(network, rng, dims, dtype=np.float64, spec=None, tries=100):
    """(X, Y, params): random inputs at the given sizes with |Z| ≥ MARGIN at every relu-type unit."""
    spec = spec or Spec.of(network, weight_decay=0.0)
    sh = shapes(network, dims)
    for _ in range(tries):
        X = rng.normal(size=sh["X"])
        params = {k: rng.normal(scale=0.8, size=s) for k, s in sh.items() if k not in ("X", "Y")}
        Zs, _ = forward(spec, X, params)
        if all(np.min(np.abs(Z), initial=np.inf) >= MARGIN
               for Z, act in zip(Zs, spec.activations) if act in KINKED):
            Y = targets(spec, sh["Y"], rng)
            cast = {k: v.astype(dtype) for k, v in params.items()}
            return X.astype(dtype), Y.astype(dtype), cast
    raise RuntimeError(f"could not draw inputs with |Z| ≥ {MARGIN} at every relu-type unit in {tries} tries")
