"""Concrete inputs for a network: sizes for its symbols, random values away from ReLU kinks."""
import numpy as np
import sympy as sp

from .recursion import Spec, forward

KINKED = ("relu", "leaky_relu")
MARGIN = 1e-3  # every pre-activation of a relu-type unit is drawn with |z| ≥ MARGIN


def dimensions(network, width=3, samples=3):
    """{size symbol: int}: every symbolic layer size set to `width`, the number of samples m to `samples`
    (`network`: a Spec, a plain specification, or an object with specification())."""
    spec = Spec.of(network, weight_decay=0.0)
    dims = {s: width for n in spec.sizes for s in sp.sympify(n, strict=True).free_symbols}
    dims.update({s: samples for s in sp.sympify(spec.samples, strict=True).free_symbols})
    return dims


def shapes(network, dims):
    """{"X": shape, "Y": shape, "W1": shape, "b1": shape, ...} at the given sizes, in the layout's own shapes."""
    spec = Spec.of(network, weight_decay=0.0)
    n = [int(sp.sympify(k, strict=True).xreplace(dims)) for k in spec.sizes]
    m = int(sp.sympify(spec.samples, strict=True).xreplace(dims))
    out = {"X": (m, n[0]) if spec.layout == "AW" else (n[0], m), "Y": (m, n[-1]) if spec.layout == "AW" else (n[-1], m)}
    for l in range(1, len(n)):
        out[f"W{l}"] = (n[l], n[l - 1]) if spec.layout == "WA" else (n[l - 1], n[l])
        if spec.has_bias(l):
            out[f"b{l}"] = (n[l], 1)
    return out


def scalars(network, value=0.1):
    """Values for the symbolic scalars of a network (a symbolic weight decay λ)."""
    spec = Spec.of(network, weight_decay=0.0)
    return {str(s): value for s in sp.sympify(spec.decay, strict=True).free_symbols}


def targets(spec, shape, rng):
    """Y valid for the loss: probability vectors per sample for softmax + cross-entropy, else in (0.05, 0.95)."""
    if spec.loss == "softmax_ce" and spec.activations[-1] == "softmax":
        Y = rng.uniform(0.0, 1.0, size=shape) ** 4
        axis = 1 if spec.layout == "AW" else 0
        return Y / Y.sum(axis=axis, keepdims=True)
    return rng.uniform(0.05, 0.95, size=shape)


def draw(network, rng, dims, dtype=np.float64, spec=None, tries=100):
    """(X, Y, params): random inputs at the given sizes with |Z| ≥ MARGIN at every relu-type unit. Samples are
    independent in a chain of dense layers, so only the samples that come near a kink are drawn again (any number of
    samples is drawn in a few rounds); the parameters are drawn again when that does not settle in `tries` rounds."""
    spec = spec or Spec.of(network, weight_decay=0.0)
    sh = shapes(network, dims)
    rows = spec.layout == "AW"   # samples are the rows of X (else its columns)
    for _ in range(tries):
        X = rng.normal(size=sh["X"])
        params = {k: rng.normal(scale=0.8, size=s) for k, s in sh.items() if k not in ("X", "Y")}
        for _ in range(tries):
            Zs, _ = forward(spec, X, params)   # columns are samples
            near = np.zeros(Zs[0].shape[1], dtype=bool) if Zs else np.zeros(0, dtype=bool)
            for Z, act in zip(Zs, spec.activations):
                if act in KINKED:
                    near |= np.any(np.abs(Z) < MARGIN, axis=0)
            if not near.any():
                Y = targets(spec, sh["Y"], rng)
                cast = {k: v.astype(dtype) for k, v in params.items()}
                return X.astype(dtype), Y.astype(dtype), cast
            fresh = rng.normal(size=(int(near.sum()), X.shape[1]) if rows else (X.shape[0], int(near.sum())))
            if rows:
                X[near] = fresh
            else:
                X[:, near] = fresh
    raise RuntimeError(f"could not draw inputs with |Z| ≥ {MARGIN} at every relu-type unit in {tries} tries")
