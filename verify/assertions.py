"""assert_gradients_match: a user's backprop against verify's reference (the closed-form recursion for dense
layers, the block reference otherwise); a failure is a table of every parameter, with the mistake named where it is
recognisable."""
from typing import Any
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache

import numpy as np

from .model import reference
from .numeric import agreement, copies, rounding_floor, scale_of, trials_at_least_one


REFERENCES = {"recursion": "closed-form recursion", "reference": "block reference",
              None: "central differences of its reference's loss"}


def _close(a, b, rtol, floor):
    return np.shape(a) == np.shape(b) and agreement(a, b, rtol=rtol, floor=floor).passed


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


@dataclass(frozen=True)
class Row:
    """One parameter in the failure table: its verdict, its worst entry with both values, and a hint."""

    name: str
    verdict: str      # ok, wrong, shape, non-finite, not numeric
    where: str = ""   # the worst entry (the first non-finite one; the shapes)
    got: str = ""
    expected: str = ""
    error: str = ""
    hint: str = ""

    @property
    def ok(self):
        return self.verdict == "ok"


def _number(x):
    return f"{x:.8g}"


def _row(name, value, expected, *, rtol, floor, hint_of):
    """The Row of one parameter's gradient `value` against `expected`; hint_of(got) names what a wrong one looks
    like."""
    try:
        got = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        return Row(name, "not numeric", hint=f"the gradient is not a numeric array ({type(value).__name__}: {e})")
    if got.shape != expected.shape:
        why = hint_of(got)
        return Row(name, "shape", hint=f"shape {got.shape}, expected {expected.shape}" + (f": {why}" if why else ""))
    bad = ~np.isfinite(got)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        return Row(name, "non-finite", str(index), _number(got[index]), _number(expected[index]),
                   hint=f"{int(bad.sum())} non-finite entr{'y' if bad.sum() == 1 else 'ies'}, first at {index}")
    verdict = agreement(got, expected, rtol=rtol, floor=floor)
    err = np.abs(got - expected)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.size else ()
    at = (str(index), _number(got[index]), _number(expected[index])) if err.size else ("", "", "")
    relative = f"{verdict.max_rel:.2g}" if np.isfinite(verdict.max_rel) else "inf"
    if verdict.passed:
        return Row(name, "ok", *at, relative)
    return Row(name, "wrong", *at, relative if verdict.detail.startswith("max") else verdict.detail, hint_of(got))


def _explaining(got, candidates, rtol, floor):
    """The first mistake whose gradients equal every gradient `got` gives (right and wrong ones alike), or None."""
    for mistake, wrong in candidates.items():
        if all(k in wrong and _close(np.asarray(v, dtype=np.float64), wrong[k], rtol, floor) for k, v in got.items()):
            return mistake
    return None


def _table(rows):
    """The rows as an aligned text table (hints last, unaligned)."""
    header = Row("parameter", "verdict", "worst entry", "got", "expected", "relative error")
    fields = ("name", "verdict", "where", "got", "expected", "error")
    widths = {f: max(len(getattr(r, f)) for r in (header, *rows)) for f in fields}
    right = {"got", "expected", "error"}

    def line(r):
        cells = [getattr(r, f).rjust(widths[f]) if f in right else getattr(r, f).ljust(widths[f]) for f in fields]
        return ("  " + "  ".join(cells) + (f"  hint: {r.hint}" if r.hint else "")).rstrip()
    return "\n".join([line(header) + ("  hint" if any(r.hint for r in rows) else ""), *map(line, rows)])


def _failure(rows, mistake, check, trial, seed):
    """The message of a failed check: which parameters are wrong, the mistake when one explains them all, the
    table."""
    wrong = [r.name for r in rows if not r.ok]
    head = (f"{', '.join(wrong)}: {len(wrong)} of {len(rows)} gradients differ from verify's {check} "
            f"[trial {trial}, seed {seed}]")
    if mistake:   # one mistake says it all: no hint per row
        rows = [replace(r, hint="") for r in rows]
    found = f"\nevery gradient is what this mistake gives: {mistake}" if mistake else ""
    return f"{head}{found}\n{_table(rows)}"


def _hint_of(name, expected, arrays, model, candidates, *, m, n_out, rtol, floor):
    """hint_of(got) for one parameter: a mistake of the network's blocks that gives it, a classic slip (transpose,
    zero, sign, weight decay, factor), or another parameter's gradient (the layers in the wrong order)."""
    E = expected[name]

    def hint_of(got):
        mistake = next((text for text, wrong in candidates().items()
                        if _close(got, wrong[name], rtol, floor) and not _close(wrong[name], E, rtol, floor)), None)
        if mistake:
            return mistake
        if got.shape != E.shape:
            return hint(got, E, rtol=rtol, floor=floor)
        why = hint(got, E, param=arrays[name] if model.is_weight(name) else None, weight_decay=model.weight_decay,
                   m=m, n_out=n_out, rtol=rtol, floor=floor)
        other = next((k for k, F in expected.items() if k != name and _close(got, F, rtol, floor)
                      and not _close(F, E, rtol, floor)), None)
        return why or (f"it is the gradient of {other} (the layers' gradients in the wrong order?)" if other else "")
    return hint_of


def assert_gradients_match(fn: Callable[..., Mapping[str, Any]], net: Any, *, trials: int = 2, rtol: float = 1e-6,
                           seed: int = 0, width: int = 3, samples: int = 3, weight_decay: float = 0.1,
                           dtype: type = np.float64) -> None:
    """Check fn(X=..., Y=..., W1=..., b1=..., ...) -> {name: gradient} against verify's reference for the network
    `net` (a plain specification, a verify.Spec, or an object with specification() such as a derive.Network): the
    closed-form recursion for a chain of dense layers, the block reference otherwise; at random inputs. A failure is
    an AssertionError with a table of every parameter (ok or wrong, the worst entry, got and expected) and the mistake
    when one explains every gradient (σ′ left out, σ′(A) for σ′(Z), W for Wᵀ, the mean's 1/m left out, a block's
    classic mistake), else a hint per parameter (transpose, zero, sign, weight decay, a factor, another layer's
    gradient). Each parameter is compared on its own scale (max |got − expected| ≤ rtol · max |expected|, and the same
    direction), down to the rounding floor of the computation (verify.numeric.rounding_floor at the whole gradient's
    scale), so a vanishing gradient is checked too.

    Symbolic sizes are set to `width`, the number of samples to `samples`, a symbolic λ to `weight_decay`
    (passed to fn by its name). `dtype` is the precision fn computes in (np.float32: a floor of float32 rounding;
    give rtol to match).
    """
    __tracebackhide__ = True   # pytest shows the caller's line and this message, not this function's frames
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
        candidates = cache(lambda: model.mistaken(arrays))   # computed once, and only for a failure
        rows = [_row(name, got[name], E, rtol=rtol, floor=floor,
                     hint_of=_hint_of(name, expected, arrays, model, candidates, m=m, n_out=n_out, rtol=rtol,
                                      floor=floor))
                for name, E in expected.items()]
        if not all(r.ok for r in rows):
            mistake = _explaining({k: got[k] for k in expected}, candidates(), rtol, floor) if all(
                r.verdict in ("ok", "wrong") for r in rows) else None
            raise AssertionError(_failure(rows, mistake, REFERENCES[model.check], trial, seed))
