"""Central finite differences and the comparison every check makes, written without reference to `derive`."""
from collections.abc import Callable, Mapping
from typing import Any
from dataclasses import dataclass

import numpy as np

ROUNDING = 256   # ulps of the computation's scale below which two results cannot be told apart
CONCLUSIVE = 1e-3  # a reference whose own error exceeds this share of its scale decides nothing


def central_difference(f: Callable[..., Any], values: Mapping[str, Any], name: str, eps: float = 1e-6) -> np.ndarray:
    """∂f/∂values[name] by central differences, entry by entry: (f(x + εe) − f(x − εe)) / 2ε."""
    x = np.array(values[name], dtype=float)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        plus = f(**{**values, name: x + step})
        minus = f(**{**values, name: x - step})
        grad[index] = (float(np.squeeze(plus)) - float(np.squeeze(minus))) / (2 * eps)
    return grad


def relative_error(actual: Any, expected: Any) -> float:
    """max |actual − expected| / max(1, max |expected|)."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape} differs from expected shape {expected.shape}")
    return float(np.max(np.abs(actual - expected), initial=0.0) / max(1.0, np.max(np.abs(expected), initial=0.0)))


def copies(values):
    """{name: a copy of each array}: what a program under check is given, so that it cannot change the inputs its
    reference is then computed from."""
    return {k: np.array(v, copy=True) if hasattr(v, "shape") else v for k, v in values.items()}


def trials_at_least_one(trials):
    """trials, refused below 1 (no trial checks nothing)."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be at least 1 (an integer), got {trials!r}")
    return trials


def sensitivity(compute, inputs, base, seed=0):
    """{name: max |r(x̃) − r(x)|} for a reference r = compute(inputs), already computed as `base` (a dict of arrays),
    and x̃ every input moved by one rounding (x(1 + ε u), u standard normal): how far rounding at the inputs' level
    moves each block of the reference, its own noise floor — small for a small block computed from small factors (a vanishing gradient),
    large for one that cancels large terms (a bias before a layer norm)."""
    rng, eps = np.random.default_rng(seed), float(np.finfo(np.float64).eps)
    moved = compute({k: v * (1 + eps * rng.standard_normal(np.shape(v))) if hasattr(v, "shape") else v
                     for k, v in inputs.items()})
    return {k: float(np.max(np.abs(np.asarray(moved[k]) - np.asarray(base[k])), initial=0.0)) for k in base}


def rounding_floor(dtype, *references):
    """ROUNDING ulps of `dtype` at the largest entry of the references: the absolute error that rounding alone can
    give a result of that computation (the floor below which a block is not resolved)."""
    return ROUNDING * float(np.finfo(dtype).eps) * scale_of(references)


def scale_of(blocks):
    """The largest finite entry over every block of a result (its computation's scale)."""
    return max((float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0))
                for b in (np.asarray(v, dtype=np.float64) for v in blocks)), default=0.0)


@dataclass(frozen=True)
class Agreement:
    """A result against its reference, on the reference's own scale: max |got − expected|, that over
    max |expected| (inf for a zero reference), the verdict with what decided it, and whether the reference was
    accurate enough to decide it."""

    max_abs: float
    max_rel: float
    passed: bool
    detail: str = ""
    conclusive: bool = True


def agreement(got, expected, *, rtol, floor=0.0, error=0.0):
    """Does `got` equal `expected` up to rtol · max|expected|, or up to floor + error when that is larger (`floor` the
    rounding of the computation, `error` the reference's own estimated error)? Shapes must match, every entry must be
    finite, and where the reference is resolved (max|expected| > floor + error) the direction must agree: cos(got,
    expected) ≥ 1 − max(rtol, (floor + error) / max|expected|), so a zeroed, negated or scaled block fails at any
    magnitude the computation resolves. A pass is conclusive only when the reference's error is below CONCLUSIVE of
    its scale (or below the rounding floor): a rough reference cannot tell a right answer from a near one."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return Agreement(np.inf, np.inf, False, f"shape {got.shape}, expected {expected.shape}")
    for what, a in (("result", got), ("reference", expected)):
        bad = ~np.isfinite(a)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            return Agreement(np.nan, np.nan, False, f"the {what} has {int(bad.sum())} non-finite entr"
                             f"{'y' if bad.sum() == 1 else 'ies'}, first at {first}: {a[first]}")
    scale = float(np.max(np.abs(expected), initial=0.0))
    floor, conclusive = floor + error, error <= max(CONCLUSIVE * scale, floor)
    max_abs = float(np.max(np.abs(got - expected), initial=0.0))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else np.inf)
    if max_abs > max(rtol * scale, floor):
        return Agreement(max_abs, max_rel, False, f"max abs err {max_abs:.3g} > {max(rtol * scale, floor):.3g} "
                         f"(rtol {rtol:g} of max|expected| {scale:.3g}, floor {floor:.3g})")
    if not conclusive:
        return Agreement(max_abs, max_rel, True, f"inconclusive: the reference's own error {error:.3g} is more than "
                         f"{CONCLUSIVE:g} of max|expected| {scale:.3g}", conclusive=False)
    if scale <= floor:
        return Agreement(max_abs, max_rel, True, f"unresolved: max|expected| {scale:.3g} ≤ floor {floor:.3g}")
    norms = float(np.linalg.norm(got) * np.linalg.norm(expected))
    cosine = float(np.sum(got * expected)) / norms if norms > 0 else 0.0
    if cosine < 1 - max(rtol, floor / scale):   # as loose as the magnitude test, never looser than a right angle
        return Agreement(max_abs, max_rel, False, f"direction: cos(result, expected) = {cosine:.6g}")
    return Agreement(max_abs, max_rel, True)
