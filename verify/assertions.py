"""assert_gradients_match: a user's backprop against verify's reference (the closed-form recursion for dense
layers), with a precise message."""
from collections.abc import Mapping

import numpy as np

from .model import reference
from .numeric import agreement, copies, rounding_floor, scale_of, trials_at_least_one


def _close(a, b, rtol, floor):
    return agreement(a, b, rtol=rtol, floor=floor).passed


def _floor(dtype, expected):
    """The rounding floor of the precision the check asks for (not of what the code returned: a float16 answer
    earns no looser check) at the gradient's scale: differences below it are rounding, not mistakes."""
    return rounding_floor(dtype, scale_of(expected.values()))


def _factor_name(c, m, n_out):
    """A name for a recognisable scale factor, e.g. '1/m' for 1/3 with m = 3."""
    for value, name in ((1 / m, "1/m"), (m, "m"), (1 / n_out, "1/n_L"), (n_out, "n_L"), (2, "2"), (0.5, "1/2")):
        if np.isclose(c, value, rtol=1e-6) and (value != 1):
            return f" ≈ {name}"
    return ""


def hint(got, expected, *, param=None, weight_decay=0.0, m=1, n_out=1, rtol=1e-6, floor=0.0):
    """What a mismatch looks like, when it looks like a classic mistake; '' otherwise."""
    if got.shape == expected.T.shape and _close(got, expected.T, rtol, floor):
        return "it is the transpose of the expected gradient"
    if got.shape != expected.shape:
        return ""
    if not np.any(got) and np.any(expected):
        return "it is zero (a term left out, or a path that does not reach this parameter)"
    if _close(got, -expected, rtol, floor):
        return "the sign is flipped"
    if param is not None and weight_decay:
        if _close(got + weight_decay * param, expected, rtol, floor):
            return f"the weight-decay term λW (λ = {weight_decay:g}) is missing"
        if _close(got - weight_decay * param, expected, rtol, floor):
            return f"the weight-decay term λW (λ = {weight_decay:g}) is counted twice"
    norm = float(np.sum(expected * expected))
    if norm > 0:
        c = float(np.sum(got * expected)) / norm
        if not np.isclose(c, 1.0) and _close(got, c * expected, rtol, floor):
            return (f"it is off by a constant factor {c:.6g}{_factor_name(c, m, n_out)} "
                    "(a missing or extra 1/m, an average instead of a sum, a missing 2?)")
    return ""


def _as_array(name, value):
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{name}: the gradient is not a numeric array ({type(value).__name__}: {e})") from None
    return array


def _compare(name, got, expected, *, param, weight_decay, m, n_out, rtol, floor, mistakes=dict):
    """Raise an AssertionError naming what is wrong with one gradient, if anything is; `mistakes()` gives the
    gradients the network's blocks' classic mistakes give ({mistake: gradients}), looked at first for a hint."""
    got = _as_array(name, got)
    if got.shape != expected.shape:
        why = hint(got, expected, rtol=rtol, floor=floor)
        raise AssertionError(f"{name}: shape {got.shape}, expected {expected.shape} (the shape of {name})"
                             + (f"; hint: {why}" if why else ""))
    bad = ~np.isfinite(got)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{name}: {int(bad.sum())} non-finite entr{'y' if bad.sum() == 1 else 'ies'}, "
                             f"first at {index}: {got[index]}")
    verdict = agreement(got, expected, rtol=rtol, floor=floor)
    if verdict.passed:
        return
    err = np.abs(got - expected)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape))
    why = next((mistake for mistake, wrong in mistakes().items()
                if _close(got, wrong[name], rtol, floor) and not _close(wrong[name], expected, rtol, floor)), None)
    why = why or hint(got, expected, param=param, weight_decay=weight_decay, m=m, n_out=n_out, rtol=rtol, floor=floor)
    raise AssertionError(
        f"{name}: gradient mismatch, worst at entry {index}: got {got[index]:.10g}, expected {expected[index]:.10g} "
        f"({verdict.detail})" + (f"; hint: {why}" if why else ""))


def assert_gradients_match(fn, net, *, trials=2, rtol=1e-6, seed=0, width=3, samples=3, weight_decay=0.1,
                           dtype=np.float64):
    """Check fn(X=..., Y=..., W1=..., b1=..., ...) -> {name: gradient} against verify's reference for the network
    `net` (a plain specification, a verify.Spec, or an object with specification() such as a derive.Network): the
    closed-form recursion for a chain of dense layers, the block reference otherwise; at random inputs; raise
    AssertionError naming the parameter, the worst entry, both values and, where recognisable, the mistake (a block's
    classic mistake first). Each parameter is compared on its own scale (max |got − expected| ≤ rtol · max |expected|,
    and the same direction), down to the rounding floor of the computation (verify.numeric.rounding_floor at the
    whole gradient's scale), so a vanishing gradient is checked too.

    Symbolic sizes are set to `width`, the number of samples to `samples`, a symbolic λ to `weight_decay`
    (passed to fn by its name). `dtype` is the precision fn computes in (np.float32: a floor of float32 rounding;
    give rtol to match).
    """
    model = reference(net, width, samples, weight_decay)
    rng = np.random.default_rng(seed)
    for trial in range(trials_at_least_one(trials)):
        arrays = model.draw(rng)
        try:
            got = fn(**copies(arrays), **model.scalars)
        except Exception as e:
            raise AssertionError(f"the gradient function raised {type(e).__name__}: {e}") from e
        if not isinstance(got, Mapping):
            raise AssertionError(f"the gradient function must return a dict {{name: gradient}}, "
                                 f"got {type(got).__name__}")
        expected = model.gradients(arrays)
        missing, extra = [k for k in expected if k not in got], sorted(set(got) - set(expected), key=str)
        if missing or extra:
            raise AssertionError("gradient keys differ from the network's parameters "
                                 f"({', '.join(expected)}): missing {missing}, unexpected {extra}")
        m, n_out = model.samples(arrays)[::-1]
        floor = _floor(dtype, expected)
        for name, E in expected.items():
            try:
                _compare(name, got[name], E, param=arrays[name] if model.is_weight(name) else None,
                         weight_decay=model.weight_decay, m=m, n_out=n_out, rtol=rtol, floor=floor,
                         mistakes=lambda: model.mistaken(arrays))
            except AssertionError as e:
                raise AssertionError(f"{e} [trial {trial}, seed {seed}]") from None
