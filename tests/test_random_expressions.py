"""Property: for random scalar expressions of the engine's operators, gradient = finite differences."""
import numpy as np
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
from verify import central_difference, relative_error

N = 3
X, A, B = (sp.MatrixSymbol(k, N, N) for k in "XAB")
I, ONE = sp.Identity(N), sp.OneMatrix(N, 1)
sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731

# Each node: (SymPy expression, NumPy function of the values dict). Built with unevaluated
# constructors: SymPy's own * and + canonicalise eagerly, which is slow on large random trees.
leaves = st.sampled_from([(X, lambda v: v["X"]), (A, lambda v: v["A"]), (B, lambda v: v["B"])])


def unary(child):
    def well_conditioned_inverse(c):
        # (4I + 0.3 tanh M)⁻¹: ‖0.3 tanh M‖₂ ≤ 0.9 < 4, so always invertible
        return (sp.Inverse(sp.MatAdd(4 * I, sp.MatMul(sp.Rational(3, 10), c[0].applyfunc(sp.tanh)))),
                lambda v: np.linalg.inv(4 * np.eye(N) + 0.3 * np.tanh(c[1](v))))

    ops = [
        lambda c: (c[0].T, lambda v: c[1](v).T),
        lambda c: (c[0].applyfunc(sp.tanh), lambda v: np.tanh(c[1](v))),
        lambda c: (c[0].applyfunc(derive.sigmoid), lambda v: sig(c[1](v))),
        lambda c: (c[0].applyfunc(sp.sin), lambda v: np.sin(c[1](v))),
        lambda c: (sp.MatMul(sp.Rational(-1, 2), c[0]), lambda v: -0.5 * c[1](v)),
        lambda c: (HadamardPower(c[0], 2), lambda v: c[1](v) ** 2),
        well_conditioned_inverse,
    ]
    return st.tuples(st.sampled_from(ops), child).map(lambda oc: oc[0](oc[1]))


def binary(child):
    ops = [
        lambda a, b: (sp.MatMul(a[0], b[0]), lambda v: a[1](v) @ b[1](v)),
        lambda a, b: (sp.MatAdd(a[0], b[0]), lambda v: a[1](v) + b[1](v)),
        lambda a, b: (HadamardProduct(a[0], b[0]), lambda v: a[1](v) * b[1](v)),
    ]
    return st.tuples(st.sampled_from(ops), child, child).map(lambda t: t[0](t[1], t[2]))


matrices = st.recursive(leaves, lambda child: st.one_of(unary(child), binary(child)), max_leaves=6)

reducers = st.sampled_from([
    lambda m: (sp.Trace(m[0]), lambda v: np.trace(m[1](v))),
    lambda m: (MatrixElement(sp.MatMul(ONE.T, m[0], ONE), 0, 0), lambda v: np.sum(m[1](v))),
    lambda m: (sp.log(sp.Determinant(sp.MatAdd(4 * I, sp.MatMul(sp.Rational(3, 10), m[0].applyfunc(sp.tanh))))),
               lambda v: np.log(np.linalg.det(4 * np.eye(N) + 0.3 * np.tanh(m[1](v))))),
])
outer = st.sampled_from([
    lambda s: s,
    lambda s: (sp.log(1 + s[0] ** 2), lambda v: np.log(1 + s[1](v) ** 2)),
    lambda s: (sp.sin(s[0]) * s[0], lambda v: np.sin(s[1](v)) * s[1](v)),
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=matrices, reduce=reducers, wrap=outer, seed=st.integers(0, 2**16))
def test_gradient_matches_finite_differences(m, reduce, wrap, seed):
    f, f_np = wrap(reduce(m))
    rng = np.random.default_rng(seed)
    v = {k: 0.5 * rng.normal(size=(N, N)) for k in "XAB"}
    G = derive.gradient(f, X)
    derived = derive.lambdify([X, A, B], G)(v["X"], v["A"], v["B"])
    fd = central_difference(lambda **w: f_np(w), v, "X")
    assert relative_error(derived, fd) < 1e-5, f"f = {f}\nG = {G}"
