"""assert_gradients_match: a user's backprop against the closed-form recursion, with a precise message."""
from collections.abc import Mapping

import numpy as np

from . import blocks, data, recursion
from .numeric import agreement, rounding_floor, scale_of, trials_at_least_one
from .recursion import Spec


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


def _compare(name, got, expected, *, param, spec, m, rtol, floor):
    """Raise an AssertionError naming what is wrong with one gradient, if anything is."""
    got = _as_array(name, got)
    n_out = expected.shape[0] if spec.layout != "AW" else expected.shape[-1]
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
    why = hint(got, expected, param=param if name.startswith("W") else None, weight_decay=spec.weight_decay,
               m=m, n_out=n_out, rtol=rtol, floor=floor)
    raise AssertionError(
        f"{name}: gradient mismatch, worst at entry {index}: got {got[index]:.10g}, expected {expected[index]:.10g} "
        f"({verdict.detail})" + (f"; hint: {why}" if why else ""))


def assert_gradients_match(fn, net, *, trials=2, rtol=1e-6, seed=0, width=3, samples=3, weight_decay=0.1,
                           dtype=np.float64):
    """Check fn(X=..., Y=..., W1=..., b1=..., ...) -> {name: gradient} against the closed-form recursion
    for the network `net` (a plain specification, a verify.Spec, or an object with specification() such as a
    derive.Network) at random inputs; raise AssertionError naming the parameter,
    the worst entry, both values and, where recognisable, the mistake. Each parameter is compared on its own scale
    (max |got − expected| ≤ rtol · max |expected|, and the same direction), down to the rounding floor of the
    computation (verify.numeric.rounding_floor at the whole gradient's scale), so a vanishing gradient is checked too.

    Symbolic sizes are set to `width`, the number of samples to `samples`, a symbolic λ to `weight_decay`
    (passed to fn by its name). `dtype` is the precision fn computes in (np.float32: a floor of float32 rounding;
    give rtol to match).
    """
    plain = net.specification() if hasattr(net, "specification") else net
    if isinstance(plain, Mapping) and plain.get("kind") == "blocks":
        return _assert_blocks_match(fn, plain, trials=trials_at_least_one(trials), rtol=rtol, seed=seed, width=width,
                                    samples=samples, dtype=dtype)
    dims = data.dimensions(net, width, samples)
    scalars = data.scalars(net, weight_decay)
    spec = Spec.of(net, weight_decay=next(iter(scalars.values()), None))
    rng = np.random.default_rng(seed)
    for trial in range(trials_at_least_one(trials)):
        X, Y, params = data.draw(spec, rng, dims, spec=spec)
        try:
            got = fn(X=X.copy(), Y=Y.copy(), **{k: v.copy() for k, v in params.items()}, **scalars)
        except Exception as e:
            raise AssertionError(f"the gradient function raised {type(e).__name__}: {e}") from e
        if not isinstance(got, Mapping):
            raise AssertionError(f"the gradient function must return a dict {{name: gradient}}, "
                                 f"got {type(got).__name__}")
        expected = recursion.gradients(spec, X, Y, params)
        missing, extra = [k for k in expected if k not in got], sorted(set(got) - set(expected), key=str)
        if missing or extra:
            raise AssertionError("gradient keys differ from the network's parameters "
                                 f"({', '.join(expected)}): missing {missing}, unexpected {extra}")
        m = X.shape[0] if spec.layout == "AW" else X.shape[1]
        floor = _floor(dtype, expected)
        for name, E in expected.items():
            try:
                _compare(name, got[name], E, param=params.get(name), spec=spec, m=m, rtol=rtol, floor=floor)
            except AssertionError as e:
                raise AssertionError(f"{e} [trial {trial}, seed {seed}]") from None


def _assert_blocks_match(fn, spec, *, trials, rtol, seed, width, samples, dtype):
    """assert_gradients_match for a network of blocks: against verify's block reference; a mismatch that one of the
    blocks' classic mistakes explains names it."""
    from .check import _block_dimensions

    shapes = blocks.shapes(spec, _block_dimensions(spec, width, samples))
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        arrays = blocks.draw(spec, shapes, rng)
        try:
            got = fn(**{k: v.copy() for k, v in arrays.items()})
        except Exception as e:
            raise AssertionError(f"the gradient function raised {type(e).__name__}: {e}") from e
        if not isinstance(got, Mapping):
            raise AssertionError(f"the gradient function must return a dict {{name: gradient}}, "
                                 f"got {type(got).__name__}")
        _, expected = blocks.loss_and_gradients(spec, arrays)
        missing, extra = [k for k in expected if k not in got], sorted(set(got) - set(expected), key=str)
        if missing or extra:
            raise AssertionError("gradient keys differ from the network's parameters "
                                 f"({', '.join(expected)}): missing {missing}, unexpected {extra}")
        floor = _floor(dtype, expected)
        for name, E in expected.items():
            G = _as_array(name, got[name])
            verdict = agreement(G, E, rtol=rtol, floor=floor)
            if verdict.passed:
                continue
            why = next((mistake for mistake, wrong in blocks.mistaken(spec, arrays).items()
                        if G.shape == wrong[name].shape and _close(G, wrong[name], rtol, floor)
                        and not _close(wrong[name], E, rtol, floor)), None)
            why = why or hint(G, E, rtol=rtol, floor=floor)
            err = np.abs(G - E) if G.shape == E.shape else None
            where = "" if err is None or not np.all(np.isfinite(err)) else \
                f", worst at entry {np.unravel_index(np.argmax(err), err.shape)}"
            raise AssertionError(f"{name}: gradient mismatch{where} ({verdict.detail})" + (f"; hint: {why}" if why else "")
                                 + f" [trial {trial}, seed {seed}]")
