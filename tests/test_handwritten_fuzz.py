"""Property: every operator the reader reads, printed by derive as the documents print it (LaTeX) and as its text
shows it (Unicode), reads back to the value NumPy computes from the same tree."""
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

import derive
from derive.printing.text import text
from verify.handwritten.algebra import Typer, evaluate
from verify.handwritten.check import Env
from verify.handwritten.errors import WrittenError
from verify.handwritten.meaning import ExpressionMeaning
from verify.handwritten.syntax import Row, read
from tests.test_random_expressions import A, B, I, N, ONE, X, leaves, sig  # noqa: F401 (the same leaves)


def unary(child):
    ops = [
        lambda c: (c[0].T, lambda v: c[1](v).T),
        lambda c: (c[0].applyfunc(sp.tanh), lambda v: np.tanh(c[1](v))),
        lambda c: (c[0].applyfunc(derive.sigmoid), lambda v: sig(c[1](v))),
        lambda c: (c[0].applyfunc(sp.exp), lambda v: np.exp(c[1](v))),
        lambda c: (c[0].applyfunc(derive.relu), lambda v: np.maximum(c[1](v), 0)),
        lambda c: (c[0].applyfunc(lambda z: sp.log(1 + sp.exp(z))), lambda v: np.log(1 + np.exp(c[1](v)))),
        lambda c: (sp.MatMul(sp.Rational(-1, 2), c[0]), lambda v: -0.5 * c[1](v)),
        lambda c: (HadamardPower(c[0], 2), lambda v: c[1](v) ** 2),
        lambda c: (sp.Inverse(sp.MatAdd(4 * I, sp.MatMul(sp.Rational(3, 10), c[0].applyfunc(sp.tanh)))),
                   lambda v: np.linalg.inv(4 * np.eye(N) + 0.3 * np.tanh(c[1](v)))),
        lambda c: (sp.MatMul(c[0], ONE, ONE.T), lambda v: c[1](v) @ np.ones((N, N))),
        lambda c: (sp.MatAdd(sp.OneMatrix(N, N), sp.MatMul(-1, c[0])), lambda v: 1 - c[1](v)),
    ]
    return st.tuples(st.sampled_from(ops), child).map(lambda oc: oc[0](oc[1]))


def binary(child):
    ops = [
        lambda a, b: (sp.MatMul(a[0], b[0]), lambda v: a[1](v) @ b[1](v)),
        lambda a, b: (sp.MatAdd(a[0], b[0]), lambda v: a[1](v) + b[1](v)),
        lambda a, b: (sp.MatAdd(a[0], sp.MatMul(-1, b[0])), lambda v: a[1](v) - b[1](v)),
        lambda a, b: (HadamardProduct(a[0], b[0]), lambda v: a[1](v) * b[1](v)),
        lambda a, b: (HadamardProduct(a[0], HadamardPower(b[0].applyfunc(sp.exp), -1)),
                      lambda v: a[1](v) / np.exp(b[1](v))),
    ]
    return st.tuples(st.sampled_from(ops), child, child).map(lambda t: t[0](t[1], t[2]))


matrices = st.recursive(leaves, lambda child: st.one_of(unary(child), binary(child)), max_leaves=5)
reducers = st.sampled_from([
    lambda m: (sp.Trace(m[0]), lambda v: np.trace(m[1](v))),
    lambda m: (sp.Determinant(sp.MatAdd(4 * I, sp.MatMul(sp.Rational(3, 10), m[0].applyfunc(sp.tanh)))),
               lambda v: np.linalg.det(4 * np.eye(N) + 0.3 * np.tanh(m[1](v)))),
    lambda m: (sp.Trace(sp.MatMul(m[0].T, m[0])), lambda v: np.sum(m[1](v) ** 2)),
])
MEANING = ExpressionMeaning("tr(X)", {"X": (N, N), "A": (N, N), "B": (N, N)})


def value(printed, point):
    row = Row(1, 0, printed)
    (_, tree), = read(row, MEANING.names)
    typer = Typer(MEANING, row)
    node = typer.finish(typer.type(tree))
    return evaluate(node, Env(MEANING, point, [], None))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrices, reducers, st.integers(0, 2**31 - 1))
def test_what_derive_prints_reads_back_to_the_same_value(m, reduce, seed):
    f, numpy_f = reduce(m)
    assume(not f.atoms(sp.ZeroMatrix))   # X − X: SymPy's 0, whose text (0) has no shape to read back
    rng = np.random.default_rng(seed)
    point = {k: rng.normal(scale=0.5, size=(N, N)) for k in "XAB"}
    expected = numpy_f(point)
    for printed in (derive.latex(f), text(f)):
        try:
            got = value(printed, point)
        except WrittenError as e:   # text writes 1 for a ones vector of any length: tr(1 1ᵀ M) does not say it
            assert printed == text(f) and "cannot tell the size" in str(e), (printed, e)
            continue
        assert np.isclose(got, expected, rtol=1e-9, atol=1e-12), (printed, got, expected)
