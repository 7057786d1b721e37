"""verify.check: a derived backprop against the recursion, finite differences and an exact SymPy proof."""
import functools
import html
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import sympy as sp

from . import exact
from .numeric import (agreement, central_difference, copies, rounding_floor, scale_of, sensitivity,
                      trials_at_least_one)
from .model import reference

EPS = 1e-6       # central-difference step (float64)
FULL_FD = 64     # parameters with at most this many entries get a full finite-difference gradient
DIRECTIONS = 3   # random directions for larger parameters, as jax.test_util.check_grads does
FD_ROUNDING = 16  # ulps of f that rounding may give each evaluation of f in a central difference
EXACT_UNITS = 10  # the exact proof runs by default when layers × units × samples is at most this (width 2)
EXACT_SECONDS = 20  # and is abandoned (said in a note, no row) when SymPy has not decided it by then
TOLERANCE = {np.dtype(np.float64): {"recursion": 1e-8, "finite differences": 1e-5},
             np.dtype(np.float32): {"recursion": 1e-4, "finite differences": 1e-3}}


@dataclass(frozen=True)
class Row:
    """One comparison: a parameter, a trial, a check, its errors and verdict."""

    parameter: str
    trial: object  # int, or "-" for the exact check (one per size)
    check: str
    max_abs: float
    max_rel: float
    passed: bool
    detail: str = ""
    conclusive: bool = True   # False: the reference was too rough at this point to decide (see numeric.agreement)


@dataclass
class Report:
    """Every comparison of a derived gradient function with an independent truth."""

    network: str
    dtype: str
    seed: int
    sizes: dict
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        """Every check agrees, and every parameter has at least one conclusive check (a report of no checks, or of
        references too rough to decide, passes nothing)."""
        return bool(self.rows) and all(row.passed for row in self.rows) and not self.undecided()

    def undecided(self):
        """The parameters no conclusive check decided."""
        decided = {row.parameter for row in self.rows if row.conclusive}
        return sorted({row.parameter for row in self.rows} - decided, key=str)

    def failures(self):
        return [row for row in self.rows if not row.passed]

    def to_json(self):
        """The report as JSON text (deterministic: sorted keys)."""
        return json.dumps({**asdict(self), "passed": self.passed}, indent=2, sort_keys=True, default=str)

    def _repr_html_(self):
        """The report as an HTML table, for a notebook."""
        cells = "".join(f"<tr><td>{html.escape(r.parameter)}</td><td>{html.escape(str(r.trial))}</td>"
                        f"<td>{html.escape(r.check)}</td><td>{r.max_abs:.2e}</td><td>{r.max_rel:.2e}</td>"
                        f"<td>{'ok' if r.passed else '<b>FAIL</b>'}</td></tr>" for r in self.rows)
        verdict = "PASSED: every check agrees" if self.passed else self._verdict()
        return (f"<div class=verify><p>verify.check: {html.escape(self.network)} ({html.escape(self.dtype)})</p>"
                "<table><tr><th>parameter</th><th>trial</th><th>check</th><th>max abs err</th><th>max rel err</th>"
                f"<th>verdict</th></tr>{cells}</table><p><b>{verdict}</b></p></div>")

    def __str__(self):
        head = f"{'parameter':<10} {'trial':>5}  {'check':<18} {'max abs err':>12} {'max rel err':>12}  verdict"
        lines = [f"verify.check: {self.network}", f"  dtype {self.dtype}, seed {self.seed}, sizes {self.sizes}",
                 *[f"  note: {n}" for n in self.notes], head, "-" * len(head)]
        for r in self.rows:
            verdict = "FAIL" if not r.passed else "ok" if r.conclusive else "ok?"
            detail = f"  ({r.detail})" if r.detail else ""
            lines.append(f"{r.parameter:<10} {str(r.trial):>5}  {r.check:<18} {r.max_abs:>12.2e} {r.max_rel:>12.2e}"
                         f"  {verdict}{detail}")
        lines.append("PASSED: every check agrees" if self.passed else self._verdict())
        return "\n".join(lines)

    def _verdict(self):
        failed = self.failures()
        if not self.rows:
            return "FAILED: no check was run"
        if failed:
            return f"FAILED: {len(failed)} check(s): " + ", ".join(f"{r.parameter}/{r.check}" for r in failed)
        return ("NOT PASSED: inconclusive for " + ", ".join(self.undecided()) + " (every reference too rough at the "
                "points drawn: ok? rows)")


def row(parameter, trial, check, got, expected, *, rtol, floor=0.0, error=0.0, detail=""):
    """A Row for one comparison, by verify.numeric.agreement (each parameter on its own scale, above the rounding
    `floor` and the reference's own `error`)."""
    a = agreement(got, expected, rtol=rtol, floor=floor, error=error)
    return Row(parameter, trial, check, a.max_abs, a.max_rel, a.passed, "; ".join(filter(None, (detail, a.detail))),
               a.conclusive)


def shaped(value, shape, broadcast=True):
    """value as an array of `shape` where it holds the same entries (a number or a 1×1 matrix for a scalar, and with
    `broadcast` a number everywhere for a constant reference), else as it is: a comparison then fails on the shape."""
    value = np.asarray(value, dtype=np.float64)
    if value.shape == tuple(shape) or value.size != 1 and value.size != int(np.prod(shape)):
        return value
    if value.size == 1 and (broadcast or int(np.prod(shape)) == 1):
        return np.broadcast_to(np.reshape(value, ()), shape)
    squeezed = lambda s: tuple(k for k in s if k != 1)  # noqa: E731
    return np.reshape(value, shape) if squeezed(value.shape) == squeezed(shape) else value


def finite_differences(loss, params, name, G, rng, project=None):
    """(derived, numeric, error): the full gradient for small parameters, else derivatives along random directions.
    `error` bounds the central differences' own error: truncation by the change from step 2ε to ε (the 2ε estimate's
    is four times the ε one's), rounding by FD_ROUNDING ulps of f over 2ε (f(x ± εv) rounded, at f's scale: a
    change of f below that is no derivative). `project` maps a gradient or direction onto the variable's space (sym
    for a symmetric matrix)."""
    x, G, project = params[name], np.asarray(G, dtype=np.float64), project or (lambda M: M)
    if G.shape != np.shape(x):   # a gradient of the wrong shape: its comparison fails on the shape
        return G, np.zeros(np.shape(x)), 0.0
    rounding = FD_ROUNDING * float(np.finfo(np.float64).eps) * abs(float(np.squeeze(loss(params)))) / EPS
    if np.size(x) <= FULL_FD:
        numeric = [project(central_difference(lambda **p: loss(p), params, name, h)) for h in (EPS, 2 * EPS)]
        return G, numeric[0], 4 * float(np.max(np.abs(numeric[0] - numeric[1]), initial=0.0)) + rounding
    derived, numeric = [], []
    for _ in range(DIRECTIONS):
        v = project(rng.normal(size=x.shape))
        v /= np.linalg.norm(v)
        derived.append(float(np.sum(G * v)))
        numeric.append([(loss({**params, name: x + h * v}) - loss({**params, name: x - h * v})) / (2 * h)
                        for h in (EPS, 2 * EPS)])
    numeric = np.array(numeric)
    return (np.array(derived), numeric[:, 0],
            4 * float(np.max(np.abs(numeric[:, 0] - numeric[:, 1]), initial=0.0)) + rounding)


PERTURBED = 64   # the floor of a block: this many times the reference's move under one rounding of the inputs


def _trial_rows(name, trial, truth, derived, expected, loss, params, rng, dtype, scale, moved):
    """Two rows for one parameter in one trial: the derived gradient against the independent `truth` (its values
    `expected`, in the dtype asked for; None: no such row), and against central differences of `loss` at the float64
    `params`; each on the parameter's own scale, above its own rounding floor: PERTURBED times `moved` (how far one rounding of the
    inputs moves this block of the reference, numeric.sensitivity) in the dtype's ulps, plus 1e-3 ulp of the whole
    gradient's `scale` (a reference of exact zeros against a program's rounding noise)."""
    ulps = float(np.finfo(dtype).eps / np.finfo(np.float64).eps)
    tol, floor = TOLERANCE[dtype], PERTURBED * ulps * moved + 1e-3 * float(np.finfo(dtype).eps) * scale
    dtype_ok = np.asarray(derived).dtype == dtype
    wrong_dtype = "" if dtype_ok else f"returned {np.asarray(derived).dtype}, not {dtype}"
    mine, numeric, error = finite_differences(loss, params, name, derived, rng)
    how = "full" if np.size(params[name]) <= FULL_FD else f"{DIRECTIONS} random directions"
    rows = [row(name, trial, "finite differences", mine, numeric, rtol=tol["finite differences"], floor=floor,
                error=error, detail="; ".join(filter(None, (how, wrong_dtype if truth is None else ""))))]
    if truth is not None:   # None: the reference is these central differences (a block with a forward pass only)
        rows.insert(0, row(name, trial, truth, derived, expected, rtol=tol["recursion"], floor=floor,
                           detail=wrong_dtype))
    return [r if dtype_ok else replace(r, passed=False) for r in rows]


def _proof_rows(derived, env, loss, dims, constants=lambda E: E):
    """One row per parameter: the derived formula (after `constants`), written out entry by entry over the explicit
    matrices `env`, against SymPy's diff of the explicit `loss`."""
    values = dict(env)
    for name, E in [*derived["forward"], *derived["deltas"]]:
        values[name] = exact.explicit(constants(E), values, dims)
    rows = []
    for name, G in derived["gradients"].items():
        G = exact.explicit(constants(G), values, dims)
        wrong = next((index for index in np.ndindex(G.shape)
                      if not exact.is_zero(G[index] - sp.diff(loss, env[name][index]))), None)
        detail = "equal as expressions" if wrong is None else f"entry {wrong} differs"
        rows.append(Row(name, "-", "exact (SymPy diff)", 0.0, 0.0, wrong is None, detail))
    return rows


def exact_rows(derived, dims, model=None):
    """The exact proof, one row per parameter: derived formula == SymPy's diff of the loss, entry by entry.
    `derived` is the plain specification of a derived backprop (its network, forward, deltas and gradients)."""
    env, _, loss, constants = (model or reference(derived)).explicit(dims)
    return _proof_rows(derived, env, loss, dims, constants)


def _exact_dimensions(model):
    """Sizes for the exact proof: symbolic widths 2, and 2 samples when that stays small, else 1."""
    dims = model.exact_dimensions(2)
    return dims if model.units(dims) <= EXACT_UNITS else model.exact_dimensions(1)


def check(result: Any, *, seed: int = 0, trials: int = 3, dtype: Any = np.float64, width: int = 3, samples: int = 3,
          exact_proof: bool | None = None) -> "Report":
    """A Report comparing result.numpy() with verify's reference, finite differences and (small sizes) an exact proof.

    `result` is what derive returns, or any object with the same interface: specification() (plain data: the
    network's specification and the derived expressions by name, or, for ∂f/∂X, f, wrt, where, gradient and
    arguments) and numpy(what) (the generated function). The reference is the closed-form recursion for a chain of
    plain dense layers (rows "recursion"), verify's block reference otherwise (rows "reference"; central differences
    of its loss where a block has only a forward pass). For the numeric trials, symbolic sizes are set to `width` and
    the number of samples to `samples`; the exact proof uses width 2. `exact_proof` forces it on (True) or off
    (False); by default it runs when the network is small (see EXACT_UNITS).
    A derivation of ∂f/∂X is checked by `check_expression`.
    """
    plain = result.specification()
    if plain.get("kind") == "expression":
        return check_expression(result, seed=seed, trials=trials, width=width)
    if plain.get("kind") in ("hessian", "hvp"):
        from .second import check_second   # second order builds on this module
        return check_second(result, seed=seed, trials=trials, width=width, exact_proof=exact_proof)
    trials_at_least_one(trials)
    dtype, model = np.dtype(dtype), reference(plain, width, samples)
    report = Report(plain["network"]["title"], dtype.name, seed,
                    {str(k): v for k, v in sorted(model.dims.items(), key=str)}, notes=list(model.notes))
    if model.scalars:
        report.notes.append("symbolic scalars set to " + ", ".join(f"{k} = {v}" for k, v in model.scalars.items()))
    fn, rng = result.numpy(), np.random.default_rng(seed)
    for trial in range(trials):
        arrays = model.draw(rng, dtype)
        derived = fn(**copies(arrays), **model.scalars)
        a64 = {k: v.astype(np.float64) for k, v in arrays.items()}
        expected = model.gradients(a64)
        params = model.parameters(a64)

        def loss(p):
            return model.loss({**a64, **p})

        scale = scale_of(expected.values())
        # where the reference is central differences itself, its rounding is in the finite differences' own error
        moved = sensitivity(model.gradients, a64, expected, seed + trial) if model.check else \
            dict.fromkeys(expected, 0.0)
        for name, G in expected.items():
            report.rows.extend(_trial_rows(name, trial, model.check, derived[name], G, loss, params, rng, dtype,
                                           scale, moved[name]))
    exact_dims = _exact_dimensions(model)
    units = model.units(exact_dims)
    # a function given by the user may swell past what the proof decides quickly ((x³ + x) of (x³ + x): degree 9)
    if exact_proof or (exact_proof is None and units <= EXACT_UNITS and not model.custom):
        try:
            rows = _within(EXACT_SECONDS if exact_proof is None else None, exact_rows, plain, exact_dims, model)
        except ValueError as e:   # a block with no SymPy forward pass
            if exact_proof:
                raise
            report.notes.append(f"exact proof skipped: {e}")
            return report
        if rows is None:
            report.notes.append(f"exact proof abandoned: not decided within {EXACT_SECONDS} s (a default run; "
                                f"exact_proof=True waits for it)")
            return report
        report.rows.extend(rows)
        report.notes.append("exact proof at sizes " + ", ".join(f"{k} = {v}" for k, v in
                                                              sorted(exact_dims.items(), key=str)) if exact_dims
                            else "exact proof at the network's own sizes")
    else:
        why = ("exact_proof=False" if exact_proof is False else "a function given by the user" if model.custom
               else f"{units} unit-samples")
        report.notes.append(f"exact proof skipped: {why} (runs by default up to {EXACT_UNITS} unit-samples with "
                            f"the activations and losses verify writes out; exact_proof=True forces it)")
    return report


class _Late(BaseException):   # not an Exception: no `except Exception` on the way swallows it
    """A _within's time ran out."""


def _within(seconds, function, *args):
    """function(*args), or None when it takes longer than `seconds` (None: no limit; off the main thread, where
    no alarm can be set, no limit either). Nested, the enclosing limit still holds: when it runs out first, the
    enclosing _within answers None."""
    import signal
    import threading
    import time

    if seconds is None or threading.current_thread() is not threading.main_thread():
        return function(*args)

    def alarm(*_):
        raise _Late
    # the timer fires again every second after its time: an exception swallowed on the way (SymPy has bare excepts)
    # is raised again
    outer, _ = signal.setitimer(signal.ITIMER_REAL, 0)   # an enclosing _within's seconds left (0: none)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer) if outer else seconds, 1)
    try:
        return function(*args)
    except _Late:
        if outer and outer <= seconds:
            raise   # the enclosing limit ran out
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:   # the enclosing timer goes on with what it had left
            signal.setitimer(signal.ITIMER_REAL, max(.01, outer - (time.monotonic() - started)), 1)


EXPLICIT_ENTRIES = 100  # f and ∂f/∂X are evaluated by SymPy when the inputs have at most this many entries
EXPLICIT_F = 1000       # f alone, up to this many


def check_expression(d, *, seed=0, trials=3, width=3):
    """A Report comparing a derivation's generated gradient (d.numpy()) with central differences of f and, for
    small inputs, with the derived formula evaluated by SymPy on the numbers (no generated code involved).

    Symbolic sizes are set to `width`. Inputs are drawn in f's domain: N(0, ½²) entries (+3I for square
    matrices), else positive entries, the first at which f and its gradient are finite; a report with no such
    point has no rows and does not pass.
    """
    trials_at_least_one(trials)
    derived = d.specification()
    args = derived["arguments"]   # the matrices and scalars f depends on; their symbolic sizes set to `width`
    dims = {s: width for a in args if a.is_Matrix for s in a.shape if s.is_Symbol}
    shapes = {str(a): shape_at(a, dims) for a in args}
    report = Report(derived["title"], "float64", seed, {str(k): v for k, v in sorted(dims.items(), key=str)})
    # f by SymPy (not by the program's own value function) up to EXPLICIT_F entries; the formula up to EXPLICIT_ENTRIES
    entries = sum(int(np.prod(s)) for s in shapes.values())
    value = _sympy(derived["where"], derived["f"], args, dims) if entries <= EXPLICIT_F else d.numpy("value")
    gradient = _sympy(derived["where"], derived["gradient"], args, dims) if entries <= EXPLICIT_ENTRIES else None
    if gradient is None:
        report.notes.append(f"more than {EXPLICIT_ENTRIES} input entries: the formula is not evaluated by SymPy"
                            + ("" if entries <= EXPLICIT_F else f"; more than {EXPLICIT_F}: f from the generated "
                               "value function"))
    grad = d.numpy()
    rng = np.random.default_rng(seed)
    for trial in range(trials):
        point = _in_domain(value, shapes, rng)
        if point is None:
            report.notes.append("no point found where f is finite (tried normal and positive inputs): nothing "
                                "checked")
            return report
        try:
            with np.errstate(all="ignore"):
                G = grad(**copies(point))
        except Exception as e:   # where f is finite, the gradient's program must run
            report.rows.append(Row(str(derived["wrt"]), trial, "runs", np.nan, np.nan, False,
                                   f"the program raised {type(e).__name__}: {e}"))
            continue
        report.rows.extend(gradient_rows(str(derived["wrt"]), trial, G, value, gradient, point, rng))
    return report


def gradient_rows(name, trial, G, value, gradient, point, rng, project=None):
    """The rows checking a gradient G of f at `point`: against the formula evaluated by SymPy (when `gradient` is
    given) and against central differences of f (`value`, a function of keyword arrays)."""
    shape = np.shape(point[name])
    G = shaped(G, shape, broadcast=False)
    floor = rounding_floor(np.float64, G)
    rows = []
    if project is not None and np.shape(G) == shape and np.ndim(G) == 2:   # a symmetric variable's gradient
        rows.append(row(name, trial, "symmetric", G, project(G), rtol=1e-10, floor=floor, detail="G = Gᵀ"))
    if gradient is not None:
        rows.append(row(name, trial, "SymPy, entrywise", G, shaped(gradient(**point), shape), rtol=1e-8,
                        floor=floor))
    mine, numeric, error = finite_differences(lambda p: float(np.squeeze(value(**p))), point, name, G, rng, project)
    how = "full" if np.size(point[name]) <= FULL_FD else f"{DIRECTIONS} random directions"
    rows.append(row(name, trial, "finite differences", mine, numeric, rtol=1e-5, floor=floor, error=error, detail=how))
    return rows


def shape_at(a, dims):
    """The shape of the argument a (a matrix or a scalar) with its symbolic sizes set by dims."""
    return tuple(int(sp.sympify(k, strict=True).xreplace(dims)) for k in a.shape) if a.is_Matrix else ()


def _sympy(where, e, args, dims):
    """e as a NumPy function of keyword arrays, evaluated by SymPy on explicit matrices of the numbers (the `where`
    definitions first): no generated code, and no symbolic entries (which swell: tr(X¹⁶)). The same function for the
    same expression, remembering its values: checks at the same points (a report run again, its mutants) evaluate
    each point once."""
    return _sympy_function(tuple(map(tuple, where)), e, tuple(args), tuple(sorted(dims.items(), key=str)))


@functools.lru_cache(maxsize=32)
def _sympy_function(where, e, args, dims):
    dims, values_at = dict(dims), {}

    def call(**values):
        key = tuple((k, np.shape(v), np.asarray(v, dtype=np.float64).tobytes()) for k, v in sorted(values.items()))
        if key not in values_at:
            if len(values_at) > 4096:
                values_at.clear()
            values_at[key] = _evaluate(where, e, args, dims, values)
        return values_at[key].copy()
    return call


def _evaluate(where, e, args, dims, values):
    env = {a.name: sp.ImmutableMatrix(values[str(a)]) for a in args if a.is_Matrix}
    scalars = {a: sp.Float(values[str(a)]) for a in args if not a.is_Matrix}
    for Z, E in where:  # in an order that computes them
        env[Z.name] = exact.explicit(E, env, dims).xreplace(scalars)
    out = exact.explicit(e, env, dims).xreplace(scalars)
    return np.array(sp.N(out).tolist() if isinstance(out, sp.MatrixBase) else sp.N(out), dtype=np.float64)


def _in_domain(value, shapes, rng, tries=20):
    """Inputs at which f is finite (f alone: a program under check that fails somewhere must fail there): normal
    first, then positive entries."""
    import warnings

    for k in range(tries):
        point = {}
        for name, shape in shapes.items():
            x = rng.normal(scale=0.5, size=shape) if shape else float(rng.normal(scale=0.5))
            if k >= tries // 2:
                x = np.abs(x) + 0.5   # a domain of positive entries (log, sqrt)
            if len(shape) == 2 and shape[0] == shape[1]:
                x = x + 3 * np.eye(shape[0])  # well conditioned, positive determinant
            point[name] = x
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                if np.all(np.isfinite(value(**point))):
                    return point
            except (ValueError, TypeError, ZeroDivisionError, np.linalg.LinAlgError):  # TypeError: complex
                continue
    return None
