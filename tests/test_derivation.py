"""The recorded derivation: every step is a true identity, checked numerically with dX = εV."""
import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct as Had

import derive
from derive.core.expr import Differential, ScalarDifferential, postorder

N = 2
X, A, B = (sp.MatrixSymbol(k, N, N) for k in "XAB")
a, b = sp.MatrixSymbol("a", N, 1), sp.MatrixSymbol("b", N, 1)
Y = sp.MatrixSymbol("Y", N, N)
rng = np.random.default_rng(7)
VALUES = {X: rng.normal(size=(N, N)) + 3 * np.eye(N), A: rng.normal(size=(N, N)), B: rng.normal(size=(N, N)),
          a: rng.normal(size=(N, 1)), b: rng.normal(size=(N, 1)), Y: rng.uniform(0.2, 0.8, size=(N, N))}
V = rng.normal(size=(N, N))  # the direction: dX = V
EPS = 1e-6

FUNCTIONS = {
    "cookbook-eq101-trAXB": sp.Trace(A * X * B),
    "cookbook-eq56-logdet": sp.log(sp.det(X)),
    "cookbook-eq61-aXinvb": a.T * X.I * b,
    "cookbook-eq53-det-XtAX": sp.Determinant(X.T * A * X),
    "bce-sigmoid": -(sp.OneMatrix(1, N) * (Had(Y, X.applyfunc(derive.sigmoid).applyfunc(sp.log))
                                           + Had(sp.OneMatrix(N, N) - Y,
                                                 (sp.OneMatrix(N, N) - X.applyfunc(derive.sigmoid)).applyfunc(sp.log)))
                     * sp.OneMatrix(N, 1)),
    "tanh-network": sp.Trace(Had(Y, (A * (X * B).applyfunc(sp.tanh)).applyfunc(sp.sin))),
}


def explicit(e):
    """e with every matrix sub-expression made explicit bottom-up (SymPy's as_explicit and doit)."""
    if isinstance(e, (sp.MatrixBase, sp.Lambda)):
        return e
    if isinstance(e, sp.MatrixExpr):
        if e.args and not isinstance(e, (sp.MatrixSymbol, sp.Identity, sp.OneMatrix, sp.ZeroMatrix)):
            e = e.func(*[explicit(a) for a in e.args])
        return e.as_explicit()
    if e.args:
        e = e.func(*[explicit(a) for a in e.args])
    return e.doit()


def evaluate(expr, values):
    """expr at numeric values, by SymPy itself."""
    out = explicit(expr.subs({k: sp.ImmutableMatrix(v) for k, v in values.items()}))
    return np.array(sp.N(out), dtype=float)


def differential_value(node):
    """dN along dX = V: (N(X + εV) − N(X − εV)) / 2ε."""
    plus = evaluate(node, {**VALUES, X: VALUES[X] + EPS * V})
    minus = evaluate(node, {**VALUES, X: VALUES[X] - EPS * V})
    return (plus - minus) / (2 * EPS)


def value_of_form(expr):
    differentials = [e for e in postorder(expr, lambda e: e.args) if isinstance(e, (Differential, ScalarDifferential))]
    replacements = {}
    for D in differentials:
        dv = differential_value(D.arg)
        replacements[D] = sp.ImmutableMatrix(dv) if D.is_Matrix else sp.Float(dv.item())
    return evaluate(expr.xreplace(replacements), VALUES)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_step_is_an_identity(name):
    d = derive.derivation(FUNCTIONS[name], X)
    checked = 0
    for step in d.steps:
        if step.rule.name == "read off":
            continue
        before, after = value_of_form(step.before), value_of_form(step.after)
        assert np.allclose(before, after, rtol=1e-5, atol=1e-7), f"{step.rule.name}: {step.before} ≠ {step.after}"
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("name", FUNCTIONS)
def test_read_off_gradient_gives_the_directional_derivative(name):
    """df along V equals tr(Gᵀ V): the derivation's end agrees with its start."""
    d = derive.derivation(FUNCTIONS[name], X)
    G = evaluate(d.gradient, VALUES)
    assert np.isclose(np.sum(G * V), differential_value(FUNCTIONS[name]).item(), rtol=1e-6)


def test_trace_derivation_reads_like_the_method():
    d = derive.derivation(sp.Trace(A * X * B), X)
    assert [r.name for r in d.rules()] == ["trace rule", "product rule", "cyclic trace", "read off"]
    text = str(d)
    assert text.splitlines()[0] == "f = tr(A X B)"
    assert text.splitlines()[-1] == "∂f/∂X = Aᵀ Bᵀ"
    assert all(step.rule.latex for step in d.steps)


def test_named_intermediates_appear_in_the_derivation():
    Z, Act = sp.MatrixSymbol("Z", N, N), sp.MatrixSymbol("A1", N, N)
    f = sp.Trace(Act.T * Act)
    d = derive.derivation(f, X, where={Act: Z.applyfunc(sp.tanh), Z: A * X})
    assert "definition" in [r.name for r in d.rules()]
    assert "A1" in str(d) and "Z" in str(d)
