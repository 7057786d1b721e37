"""Fuzzer of the forward sweep: random matrix-valued F(X) of every operator (tests/test_fuzz.py's generator), with
exponents, elementwise bodies and 1×1 powers that depend on X, through derive.jacobian (against central differences
of F), derive.vjp (against Jᵀ vec G) and derive.hvp of tr(Gᵀ F) (against second central differences of tr(Gᵀ F)).
A body that depends on X is refused by every entry point with UnsupportedOperation naming the operator.

FUZZ_EXAMPLES sets the number of examples (default 25 here); --hypothesis-show-statistics counts the refused ones.
"""
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import derive
from derive.engine.derivation import arguments
from derive.printing.text import text

from .test_fuzz import SETTINGS, Kink, _column, contexts, gen, positive, reduce_, values_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
y = sp.Symbol("y")
H = 1e-4   # the step of the second differences


def dependent(ctx, shape, draw, depth):
    """(F, NumPy function, refused): an operator whose exponent or body is a scalar S of the variables, or a
    product with the 1×1 power (uᵀu)^p; refused when the body of an elementwise function depends on X."""
    kind = draw(st.sampled_from(["exponent", "body", "norm"]))
    S, s = reduce_(ctx, draw, max(depth - 1, 0))
    if kind == "exponent":   # E^∘(1 + tanh(S)/2): a positive base, an exponent in (1/2, 3/2)
        E, e = positive(ctx, shape, draw, max(depth - 1, 0))
        p = 1 + sp.tanh(S) / 2
        return HadamardPower(E, p), (lambda v: e(v) ** (1 + np.tanh(s(v)) / 2)), False
    if kind == "body":   # E ↦ sin(E_ij)·tanh(S) entrywise: derived for a constant S, refused for S(X)
        E, e = gen(ctx, shape, draw, max(depth - 1, 0))
        return (E.applyfunc(sp.Lambda(y, sp.sin(y) * sp.tanh(S))), (lambda v: np.sin(e(v)) * np.tanh(s(v))),
                ctx.X in S.free_symbols)
    # E u (uᵀu)^p with u a column: x/‖x‖ and its kin, a 1×1 matrix to a constant power
    r, c = shape
    u, uf = _column(ctx, c, draw, max(depth - 1, 0))
    E, e = gen(ctx, (r, c), draw, max(depth - 1, 0))
    p = draw(st.sampled_from([sp.Rational(1, 2), sp.Rational(-1, 2), -1, sp.Rational(-3, 2), 2]))
    F = sp.MatMul(E, u, sp.MatPow(sp.MatMul(u.T, u), p), sp.OneMatrix(1, c))
    return F, (lambda v: e(v) @ uf(v) * np.sum(uf(v) ** 2) ** float(p) @ np.ones((1, e(v).shape[1]))), False


def matrix_f(ctx, shape, draw, depth):
    """(F, NumPy function, refused): a random matrix function of `shape`, a dependent operator at times."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        F, f = gen(ctx, shape, draw, depth)
        return F, f, False
    D, dv, refused = dependent(ctx, shape, draw, depth)
    if choice == 1:
        return D, dv, refused
    E, e = gen(ctx, shape, draw, depth - 1)
    if choice == 2:
        return HadamardProduct(E, D), (lambda v: e(v) * dv(v)), refused
    return sp.MatAdd(E, D), (lambda v: e(v) + dv(v)), refused


def evaluate(expr, v):
    """expr by derive's generated code at the values v {symbol: array}."""
    args = arguments([expr], ())
    return np.asarray(derive.lambdify(args, expr)(*[v[a] for a in args]), dtype=float)


def vec(a):
    return np.reshape(np.transpose(a), (-1, 1))


def smooth(fn, v):
    """fn at v, with a kink, an overflow or a huge value an assumption that fails."""
    try:
        with np.errstate(all="raise"):
            value = np.asarray(fn(v), dtype=float)
    except (Kink, FloatingPointError, ZeroDivisionError):
        assume(False)
    assume(np.all(np.isfinite(value)) and np.max(np.abs(value), initial=0) < 1e4)
    return value


def fd_jacobian(fn, v, X, eps=1e-6):
    """J with d vec F = J d vec X by central differences of fn."""
    base = v[X]
    columns = []
    for j in range(base.size):
        step = vec(np.zeros_like(base)).ravel()
        step[j] = eps
        step = step.reshape(base.shape[::-1]).T
        columns.append((vec(smooth(fn, {**v, X: base + step})) - vec(smooth(fn, {**v, X: base - step})))
                       / (2 * eps))
    return np.hstack(columns)


def fd_hvp(fn, v, X, direction):
    """H vec V of fn (a scalar) by second central differences: (f(X+hV+he_j) − f(X+hV−he_j) − f(X−hV+he_j) +
    f(X−hV−he_j)) / 4h²."""
    base, out = v[X], np.zeros_like(v[X])
    for index in np.ndindex(base.shape):
        e = np.zeros_like(base)
        e[index] = H
        at = lambda a, b: float(smooth(fn, {**v, X: base + a * H * direction + b * e}))  # noqa: E731
        out[index] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * H * H)
    return out


@settings(max_examples=EXAMPLES, **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_matrix_functions_jacobian_vjp_and_hvp_against_differences(ctx, data, seed):
    draw = data.draw
    N, M = ctx.N, ctx.M
    shape = draw(st.sampled_from([ctx.X.shape] * 2 + [(N, N), (N, M), (M, N), (M, M)]))   # X's own more often
    F, F_np, refused = matrix_f(ctx, shape, draw, draw(st.integers(1, 3)))
    X = ctx.X
    assume(X in F.free_symbols)
    note(f"F = {sp.srepr(F)}")
    G, V = sp.MatrixSymbol("G_cotangent", *shape), sp.MatrixSymbol("V_direction", *X.shape)
    f = sp.Trace(sp.MatMul(sp.Transpose(G), F))
    calls = {"jacobian": lambda: derive.jacobian(F, X), "vjp": lambda: derive.vjp(F, X, G),
             "hvp": lambda: derive.hvp(f, X, V)}
    if refused:
        for name, call in calls.items():
            with pytest.raises(derive.UnsupportedOperation, match="ElementwiseApplyFunction"):
                call()
                pytest.fail(f"{name} of {text(F)} returned")
        event("refused by name")
        return
    rng = np.random.default_rng(seed)
    results = {name: call() for name, call in calls.items()}
    symbols = set().union(*(arguments([e], ()) for e in (F, *results.values()))) - {G, V}
    v = values_for(ctx, rng, sorted(symbols, key=str))
    v[G], v[V] = rng.normal(size=ctx.shape_value(shape)), rng.normal(size=ctx.shape_value(X.shape))
    smooth(F_np, v)
    J = fd_jacobian(F_np, v, X)
    assume(np.max(np.abs(J), initial=0) < 1e4)
    report = f"F = {text(F)}\n" + "\n".join(f"{name}: {text(r)}" for name, r in results.items())
    tol = dict(rtol=1e-5, atol=1e-6 * max(1.0, float(np.max(np.abs(J), initial=0))))
    np.testing.assert_allclose(evaluate(results["jacobian"], v), J, **tol, err_msg=report)
    np.testing.assert_allclose(vec(evaluate(results["vjp"], v)), J.T @ vec(v[G]), **tol, err_msg=report)
    event("derived and checked")
    f_np = lambda w: float(np.sum(w[G] * F_np(w)))  # noqa: E731
    expected = fd_hvp(f_np, v, X, v[V])
    np.testing.assert_allclose(np.broadcast_to(evaluate(results["hvp"], v), expected.shape), expected, rtol=1e-4,
                               atol=1e-4 * max(1.0, float(np.max(np.abs(expected), initial=0))), err_msg=report)
