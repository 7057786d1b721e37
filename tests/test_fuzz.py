"""Fuzzer: random scalar functions built from every operator the engine supports, at integer and symbolic sizes,
with user names that look like the generated code's own; for each, three independent computations must agree:

  (1) central finite differences of the function value, written in NumPy beside the SymPy expression;
  (2) the symbolic gradient evaluated by SymPy itself (the symbols replaced by explicit matrices, .doit(), evalf),
      which never goes through derive's printer;
  (3) the generated code: derive.derivation(f, X).numpy() for the gradient, the value and both, and
      derive.lambdify of the gradient.

FUZZ_EXAMPLES sets the number of examples of the main property (default 150; the others take a share of it).
"""
import os

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

import derive
from derive.codegen.program import common_subexpressions
from derive.core.functions import LogSoftmax
from derive.printing.text import text

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
# shrinking a failure of these slow examples takes minutes: only with FUZZ_SHRINK=1 (the failure message shows f,
# G and the generated code either way)
PHASES = tuple(Phase) if os.environ.get("FUZZ_SHRINK") else (Phase.explicit, Phase.reuse, Phase.generate)
SETTINGS = dict(deadline=None, phases=PHASES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
EPS = 1e-6
RTOL = 1e-5

x = sp.Symbol("x")
# scalar arguments, two named like the Hadamard algebra's internal atoms (_h0, _c0)
SCALARS = (sp.Symbol("s"), sp.Symbol("_h0"), sp.Symbol("_c0"))
LAMBDAS = {  # compound elementwise bodies: (Lambda, NumPy)
    "exp(x) - x": (sp.Lambda(x, sp.exp(x) - x), lambda z: np.exp(z) - z),
    "sqrt(x**2 + 1)": (sp.Lambda(x, sp.sqrt(x ** 2 + 1)), lambda z: np.sqrt(z ** 2 + 1)),
    "asinh(x)": (sp.Lambda(x, sp.asinh(x)), np.arcsinh),
    "x/(1 + x**2)": (sp.Lambda(x, x / (1 + x ** 2)), lambda z: z / (1 + z ** 2)),
}


class Kink(Exception):
    """A non-smooth function evaluated too close to its kink for finite differences."""


def _away(z, margin=1e-3):
    if np.min(np.abs(z)) < margin:
        raise Kink
    return z


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z, axis):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# elementwise functions on the whole real line: (SymPy function or Lambda, NumPy, name)
def _leaky(alpha):
    return (sp.Lambda(x, derive.leaky_relu(x, alpha)),
            lambda z: np.where(_away(z) > 0, z, float(alpha) * z), f"leaky_relu(x, {alpha})")


UNBOUNDED = [
    (sp.tanh, np.tanh, "tanh"), (sp.sin, np.sin, "sin"), (derive.sigmoid, _sig, "sigmoid"),
    (derive.softplus, lambda z: np.logaddexp(0, z), "softplus"),
    (derive.relu, lambda z: np.maximum(_away(z), 0), "relu"),
    # (a slope above 1 only in the corner cases: SymPy evaluates leaky_relu(x, α) as Max(αx, x), the code as x or αx)
    _leaky(sp.Rational(1, 100)), _leaky(sp.Rational(1, 5)), _leaky(sp.Rational(-1, 2)),
    (sp.exp, np.exp, "exp"),
    *[(lam, fn, name) for name, (lam, fn) in LAMBDAS.items()],
]
# elementwise functions of a positive argument
POSITIVE = [(sp.log, np.log, "log"), (sp.sqrt, np.sqrt, "sqrt"),
            (sp.Lambda(x, sp.log(x) * x), lambda z: np.log(z) * z, "x log x")]


class Context:
    """The sizes and symbols of one example."""

    def __init__(self, symbolic, n_value, m_value, x_cols):
        if symbolic:
            self.n = sp.Symbol("n", integer=True, positive=True)
            self.m = sp.Symbol("m", integer=True, positive=True)
            self.N, self.M = self.n, self.m
            self.sizes = {self.n: n_value, self.m: m_value}
        else:
            self.N, self.M = sp.Integer(n_value), sp.Integer(m_value)
            self.sizes = {}
        self.value_of_size = {self.N: n_value, self.M: m_value, sp.S.One: 1}
        N, M = self.N, self.M
        X_cols = N if x_cols == "N" else M
        self.X = sp.MatrixSymbol("X", N, X_cols)
        # leaves by shape; names that the code itself uses (_t0, xp, namespace, sigmoid, lambda) and a matrix n
        # beside the size n
        pools = {
            (N, N): ["A", "_t0", "xp", "n"],
            (N, M): ["B", "namespace"],
            (M, N): ["C", "lambda"],
            (M, M): ["D", "sigmoid"],
            (N, 1): ["b"],
            (M, 1): ["c"],
        }
        self.leaves = {}
        for shape, names in pools.items():
            self.leaves.setdefault(shape, []).extend(sp.MatrixSymbol(k, *shape) for k in names)
        self.leaves.setdefault(self.X.shape, []).insert(0, self.X)
        self.extra = {}  # shape -> named intermediates usable as leaves

    def shape_value(self, shape):
        return tuple(self.value_of_size[s] for s in shape)

    def symbols(self):
        out = {S for pool in self.leaves.values() for S in pool}
        return sorted(out, key=str)


def _leaf(ctx, shape, draw):
    pool = list(ctx.leaves.get(shape, [])) + list(ctx.extra.get(shape, []))
    if shape == ctx.X.shape:
        pool += [ctx.X] * 2  # X more often
    if not pool:
        raise AssertionError(f"no leaf of shape {shape}")
    S = draw(st.sampled_from(pool))
    return S, (lambda v, S=S: v[S])


def _coeff(draw):
    c = draw(st.sampled_from([1, -1, sp.Rational(1, 2), sp.Rational(-3, 4), 2, sp.Rational(-5, 3),
                              *SCALARS, "-s", "s/2"]))
    if c == "-s":
        return -SCALARS[0], (lambda v: -v[SCALARS[0]])
    if c == "s/2":
        return SCALARS[0] / 2, (lambda v: v[SCALARS[0]] / 2)
    if isinstance(c, sp.Symbol):
        return c, (lambda v, c=c: v[c])
    c = sp.sympify(c)
    return c, (lambda v, c=c: float(c))


def _column(ctx, rows, draw, depth):
    """A column of `rows` entries: a vector leaf, or a product ending in one."""
    k = draw(st.sampled_from([ctx.N, ctx.M]))
    choice = draw(st.integers(0, 2)) if depth > 0 else 0
    if choice == 0 or rows not in (ctx.N, ctx.M):
        return _leaf(ctx, (rows, sp.S.One), draw)
    if choice == 1:
        A, a = gen(ctx, (rows, k), draw, depth - 1)
        b, bf = _leaf(ctx, (k, sp.S.One), draw)
        return sp.MatMul(A, b), (lambda v: a(v) @ bf(v))
    b, bf = _leaf(ctx, (rows, sp.S.One), draw)
    return b.applyfunc(sp.tanh), (lambda v: np.tanh(bf(v)))


def positive(ctx, shape, draw, depth):
    """A matrix expression with entries ≥ 1/2 (the domain of log, sqrt and negative or rational powers)."""
    E, e = gen(ctx, shape, draw, depth)
    one = sp.OneMatrix(*shape)
    kind = draw(st.integers(0, 3))
    if kind == 0:   # E^∘2 + 1
        return sp.MatAdd(HadamardPower(E, 2), one), (lambda v: e(v) ** 2 + 1)
    if kind == 1:   # σ(E) + 1/2·1
        return (sp.MatAdd(E.applyfunc(derive.sigmoid), sp.MatMul(sp.Rational(1, 2), one)),
                lambda v: _sig(e(v)) + 0.5)
    if kind == 2:   # sqrt(E^2 + 1) as a compound Lambda
        lam, fn = LAMBDAS["sqrt(x**2 + 1)"]
        return E.applyfunc(lam), (lambda v: fn(e(v)))
    return E.applyfunc(sp.exp), (lambda v: np.exp(e(v)))


def well_conditioned(ctx, size, draw, depth):
    """4I + 0.3 tanh(E): ‖0.3 tanh E‖₂ ≤ 0.9 < 4, so invertible with a positive determinant."""
    E, e = gen(ctx, (size, size), draw, depth)
    return (sp.MatAdd(sp.MatMul(4, sp.Identity(size)), sp.MatMul(sp.Rational(3, 10), E.applyfunc(sp.tanh))),
            lambda v: 4 * np.eye(e(v).shape[0]) + 0.3 * np.tanh(e(v)))


def gen(ctx, shape, draw, depth):
    """(SymPy matrix expression of `shape`, NumPy function of the values) with at most `depth` nested operators."""
    if depth <= 0 or draw(st.integers(0, 5)) == 0:
        return _leaf(ctx, shape, draw)
    r, c = shape
    N, M = ctx.N, ctx.M
    ops = ["matmul", "matmul3", "add", "sub", "ones", "colbcast", "rowbcast", "transpose", "hadamard", "hpow",
           "hpow_pos", "unbounded", "positive_fn", "scalar_times", "softmax", "const_fn", "lambda_operand"]
    if r == c:
        ops += ["inverse", "matpow", "identity"]
    op = draw(st.sampled_from(ops))
    sub = depth - 1
    if op in ("matmul", "scalar_times") and draw(st.booleans()):
        pass
    if op == "matmul":
        k = draw(st.sampled_from([N, M]))
        coeff, cf = _coeff(draw)
        A, a = gen(ctx, (r, k), draw, sub)
        B, b = gen(ctx, (k, c), draw, sub)
        return sp.MatMul(coeff, A, B), (lambda v: cf(v) * (a(v) @ b(v)))
    if op == "matmul3":
        k, j = draw(st.sampled_from([N, M])), draw(st.sampled_from([N, M]))
        A, a = gen(ctx, (r, k), draw, sub)
        B, b = gen(ctx, (k, j), draw, sub)
        C, cc = gen(ctx, (j, c), draw, sub)
        return sp.MatMul(A, B, C), (lambda v: a(v) @ b(v) @ cc(v))
    if op == "add":
        A, a = gen(ctx, shape, draw, sub)
        B, b = gen(ctx, shape, draw, sub)
        return sp.MatAdd(A, B), (lambda v: a(v) + b(v))
    if op == "sub":
        coeff, cf = _coeff(draw)
        A, a = gen(ctx, shape, draw, sub)
        B, b = gen(ctx, shape, draw, sub)
        return sp.MatAdd(A, sp.MatMul(-1, coeff, B)), (lambda v: a(v) - cf(v) * b(v))
    if op == "ones":   # E + 1, 1 − E, E − 2·1
        A, a = gen(ctx, shape, draw, sub)
        one = sp.OneMatrix(r, c)
        form = draw(st.integers(0, 2))
        if form == 0:
            return sp.MatAdd(A, one), (lambda v: a(v) + 1)
        if form == 1:
            return sp.MatAdd(one, sp.MatMul(-1, A)), (lambda v: 1 - a(v))
        return sp.MatAdd(A, sp.MatMul(-2, one)), (lambda v: a(v) - 2)
    if op == "colbcast":   # E + b 1ᵀ (or b 1ᵀ alone, or 1 + b 1ᵀ)
        b, bf = _column(ctx, r, draw, sub)
        coeff, cf = _coeff(draw)
        term = sp.MatMul(coeff, b, sp.OneMatrix(1, c))
        form = draw(st.integers(0, 2))
        if form == 0:
            A, a = gen(ctx, shape, draw, sub)
            return sp.MatAdd(A, term), (lambda v: a(v) + cf(v) * bf(v))
        if form == 1:
            return sp.MatAdd(sp.OneMatrix(r, c), term), (lambda v: 1 + cf(v) * bf(v) + np.zeros(ctx.shape_value(shape)))
        # b 1ᵀ + 1 cᵀ: a column and a row
        d, df = _column(ctx, c, draw, sub)
        return (sp.MatAdd(term, sp.MatMul(sp.OneMatrix(r, 1), d.T)),
                lambda v: cf(v) * bf(v) + df(v).T)
    if op == "rowbcast":   # E − 1 dᵀ
        d, df = _column(ctx, c, draw, sub)
        A, a = gen(ctx, shape, draw, sub)
        return sp.MatAdd(A, sp.MatMul(-1, sp.OneMatrix(r, 1), d.T)), (lambda v: a(v) - df(v).T)
    if op == "transpose":
        A, a = gen(ctx, (c, r), draw, sub)
        return sp.Transpose(A), (lambda v: a(v).T)
    if op == "hadamard":
        A, a = gen(ctx, shape, draw, sub)
        B, b = gen(ctx, shape, draw, sub)
        return HadamardProduct(A, B), (lambda v: a(v) * b(v))
    if op == "hpow":
        p = draw(st.sampled_from([2, 3]))
        A, a = gen(ctx, shape, draw, sub)
        return HadamardPower(A, p), (lambda v: a(v) ** p)
    if op == "hpow_pos":
        p = draw(st.sampled_from([-1, -2, sp.Rational(3, 2), sp.Rational(-1, 2), sp.Rational(1, 3)]))
        A, a = positive(ctx, shape, draw, sub)
        return HadamardPower(A, p), (lambda v: a(v) ** float(p))
    if op == "unbounded":
        fn, f_np, _ = draw(st.sampled_from(UNBOUNDED))
        A, a = gen(ctx, shape, draw, sub)
        if fn is sp.exp:   # bounded argument: tanh first
            return A.applyfunc(sp.tanh).applyfunc(sp.exp), (lambda v: np.exp(np.tanh(a(v))))
        return A.applyfunc(fn), (lambda v: f_np(a(v)))
    if op == "positive_fn":
        fn, f_np, _ = draw(st.sampled_from(POSITIVE))
        A, a = positive(ctx, shape, draw, sub)
        return A.applyfunc(fn), (lambda v: f_np(a(v)))
    if op == "lambda_operand":
        # a compound Lambda in every operand position: left or right of @, under ᵀ, base of ∘power, factor of ⊙
        lam, f_np = LAMBDAS[draw(st.sampled_from(sorted(LAMBDAS)))]
        where = draw(st.sampled_from(["left", "right", "T", "pow", "had"]))
        if where in ("left", "right"):
            k = draw(st.sampled_from([N, M]))
            A, a = gen(ctx, (r, k), draw, sub)
            B, b = gen(ctx, (k, c), draw, sub)
            if where == "left":
                return sp.MatMul(A.applyfunc(lam), B), (lambda v: f_np(a(v)) @ b(v))
            return sp.MatMul(A, B.applyfunc(lam)), (lambda v: a(v) @ f_np(b(v)))
        if where == "T":
            A, a = gen(ctx, (c, r), draw, sub)
            return sp.Transpose(A.applyfunc(lam)), (lambda v: f_np(a(v)).T)
        A, a = gen(ctx, shape, draw, sub)
        if where == "pow":
            return HadamardPower(A.applyfunc(lam), 2), (lambda v: f_np(a(v)) ** 2)
        B, b = gen(ctx, shape, draw, sub)
        return HadamardProduct(B, A.applyfunc(lam)), (lambda v: b(v) * f_np(a(v)))
    if op == "scalar_times":   # a scalar function of a trace times a matrix
        A, a = gen(ctx, shape, draw, sub)
        S, s = reduce_(ctx, draw, sub)
        return sp.MatMul(sp.sin(S), A), (lambda v: np.sin(s(v)) * a(v))
    if op == "softmax":
        axis = draw(st.sampled_from([0, 1]))
        A, a = gen(ctx, shape, draw, sub)
        return derive.Softmax(A, axis), (lambda v: _softmax(a(v), axis))
    if op == "const_fn":   # an elementwise constant: the matrix 2·1, times E
        A, a = gen(ctx, shape, draw, sub)
        B, b = gen(ctx, shape, draw, sub)
        return (HadamardProduct(ElementwiseApplyFunction(sp.Lambda(x, sp.Integer(2)), A), B),
                lambda v: 2 * np.ones_like(a(v)) * b(v))
    if op == "inverse":
        W, w = well_conditioned(ctx, r, draw, sub)
        form = draw(st.integers(0, 2))
        if form == 0:
            return sp.Inverse(W), (lambda v: np.linalg.inv(w(v)))
        A, a = gen(ctx, shape, draw, sub)
        if form == 1:   # W⁻¹ A: a solve
            return sp.MatMul(sp.Inverse(W), A), (lambda v: np.linalg.solve(w(v), a(v)))
        return sp.MatMul(A, sp.Inverse(W)), (lambda v: a(v) @ np.linalg.inv(w(v)))
    if op == "matpow":
        k = draw(st.sampled_from([2, 3]))
        A, a = gen(ctx, shape, draw, sub)
        return sp.MatPow(A, k), (lambda v: np.linalg.matrix_power(a(v), k))
    if op == "identity":
        A, a = gen(ctx, shape, draw, sub)
        coeff, cf = _coeff(draw)
        return (sp.MatAdd(A, sp.MatMul(coeff, sp.Identity(r))),
                lambda v: a(v) + cf(v) * np.eye(ctx.value_of_size[r]))
    raise AssertionError(op)


def reduce_(ctx, draw, depth):
    """(scalar SymPy expression, NumPy function): a trace, an entry, a sum, a (log) determinant, a softmax."""
    N, M = ctx.N, ctx.M
    kind = draw(st.sampled_from(["trace", "trace_prod", "entry", "sum", "logdet", "det", "softmax", "trace_lambda",
                                 "trace_inverse"]))
    if kind == "trace":
        k = draw(st.sampled_from([N, M]))
        A, a = gen(ctx, (k, k), draw, depth)
        return sp.Trace(A), (lambda v: np.trace(a(v)))
    if kind == "trace_prod":   # tr(P Q) with P k×j: printed as a sum of products
        k, j = draw(st.sampled_from([N, M])), draw(st.sampled_from([N, M]))
        coeff, cf = _coeff(draw)
        A, a = gen(ctx, (k, j), draw, depth)
        B, b = gen(ctx, (j, k), draw, depth)
        return sp.Trace(sp.MatMul(coeff, A, B)), (lambda v: cf(v) * np.trace(a(v) @ b(v)))
    if kind == "entry":
        k, j = draw(st.sampled_from([N, M])), draw(st.sampled_from([N, M]))
        i1, i2 = draw(st.integers(0, 1)), draw(st.integers(0, 1))
        A, a = gen(ctx, (k, j), draw, depth)
        return MatrixElement(A, i1, i2), (lambda v: a(v)[i1, i2])
    if kind == "sum":   # 1ᵀ E 1, a 1×1 matrix, read as its entry
        k, j = draw(st.sampled_from([N, M])), draw(st.sampled_from([N, M]))
        A, a = gen(ctx, (k, j), draw, depth)
        return (MatrixElement(sp.MatMul(sp.OneMatrix(1, k), A, sp.OneMatrix(j, 1)), 0, 0),
                lambda v: np.sum(a(v)))
    if kind in ("logdet", "det"):
        k = draw(st.sampled_from([N, M]))
        W, w = well_conditioned(ctx, k, draw, depth)
        if kind == "logdet":
            return sp.log(sp.Determinant(W)), (lambda v: np.log(np.linalg.det(w(v))))
        return sp.Determinant(W), (lambda v: np.linalg.det(w(v)))
    if kind == "softmax":   # tr(softmax(E) Bᵀ)
        k, j = draw(st.sampled_from([N, M])), draw(st.sampled_from([N, M]))
        axis = draw(st.sampled_from([0, 1]))
        A, a = gen(ctx, (k, j), draw, depth)
        B, b = gen(ctx, (k, j), draw, depth)
        return (sp.Trace(sp.MatMul(derive.Softmax(A, axis), sp.Transpose(B))),
                lambda v: np.trace(_softmax(a(v), axis) @ b(v).T))
    if kind == "trace_lambda":   # a compound Lambda inside a trace
        lam, f_np = LAMBDAS[draw(st.sampled_from(sorted(LAMBDAS)))]
        k = draw(st.sampled_from([N, M]))
        A, a = gen(ctx, (k, k), draw, depth)
        return sp.Trace(A.applyfunc(lam)), (lambda v: np.trace(f_np(a(v))))
    k = draw(st.sampled_from([N, M]))
    W, w = well_conditioned(ctx, k, draw, depth)
    return sp.Trace(sp.Inverse(W)), (lambda v: np.trace(np.linalg.inv(w(v))))


def outer(draw, S, s):
    """A scalar function of a scalar: Max, Min, Abs, Heaviside, relu, log(1 + s²), sin, 1/symbol, products."""
    kind = draw(st.sampled_from(["id", "max", "max3", "min", "abs", "heaviside", "relu", "log1p2", "sin", "by_symbol",
                                 "times_symbol", "exp_tanh"]))
    c = sp.Float(0.25)
    try:   # SymPy itself cannot build Max(log|4I + …|, c), exp(tanh(log|4I + …|)): TypeError (Mix of Matrix and Scalar)
        sp.Max(S, c), sp.Min(S, c), sp.exp(sp.tanh(S)), sp.Abs(S), sp.Heaviside(S - c)
    except Exception:  # noqa: BLE001 — SymPy's signsimp in Abs rebuilds −(A − B) as a Mul (AttributeError), …
        kind = "log1p2"
    if kind == "id":
        return S, s
    if kind == "max":
        return sp.Max(S, c), (lambda v: max(_away(s(v) - 0.25), 0) + 0.25)
    if kind == "max3":
        return sp.Max(S, c, -S), (lambda v: max(s(v), 0.25, -s(v)) + 0 * _away(abs(abs(s(v)) - 0.25)))
    if kind == "min":
        return sp.Min(S, c), (lambda v: min(_away(s(v) - 0.25), 0) + 0.25)
    if kind == "abs":
        return sp.Abs(S), (lambda v: abs(_away(s(v))))
    if kind == "heaviside":   # H(s − c)·s: H' = 0 away from 0
        return sp.Heaviside(S - c) * S, (lambda v: float(_away(s(v) - 0.25) > 0) * s(v))
    if kind == "relu":
        return derive.relu(S), (lambda v: max(_away(s(v)), 0))
    if kind == "log1p2":
        return sp.log(1 + S ** 2), (lambda v: np.log(1 + s(v) ** 2))
    if kind == "sin":
        return sp.sin(S), (lambda v: np.sin(s(v)))
    if kind == "by_symbol":   # S / s: 1/s printed for a user Symbol
        h = draw(st.sampled_from(SCALARS))
        return S / h, (lambda v: s(v) / v[h])
    if kind == "times_symbol":
        h = draw(st.sampled_from(SCALARS))
        return h * S, (lambda v: v[h] * s(v))
    return sp.exp(sp.tanh(S)), (lambda v: np.exp(np.tanh(s(v))))


def scalar_f(ctx, draw, depth):
    S, s = reduce_(ctx, draw, depth)
    S, s = outer(draw, S, s)
    if draw(st.integers(0, 3)) == 0:   # a sum or product of two
        T, t = reduce_(ctx, draw, max(depth - 1, 0))
        if draw(st.booleans()):
            return S + T, (lambda v: s(v) + t(v))
        return S * T, (lambda v: s(v) * t(v))
    return S, s


# ---------------------------------------------------------------------------------------------------- evaluation


def values_for(ctx, rng, symbols):
    v = {}
    for S in symbols:
        if S in ctx.sizes:   # a size that is an argument (read off no shape): its value
            v[S] = ctx.sizes[S]
        elif isinstance(S, sp.MatrixSymbol):
            v[S] = 0.5 * rng.normal(size=ctx.shape_value(S.shape))
        else:
            v[S] = float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1]))
    return v


def sympy_value(expr, ctx, v):
    """expr evaluated by SymPy alone: sizes and symbols replaced by numbers and explicit matrices, then every node
    rebuilt bottom-up from explicit operands, .doit() and made explicit (Identity, 1, E_ij, softmax by their
    entries)."""
    e = expr.xreplace(ctx.sizes) if ctx.sizes else expr
    mapping = {}
    for S, val in v.items():
        if isinstance(S, sp.MatrixSymbol):
            concrete = S.xreplace(ctx.sizes) if ctx.sizes else S
            mapping[concrete] = sp.ImmutableMatrix(val.tolist())
        else:
            mapping[S] = sp.Float(val)
    memo = {}

    def ev(node):
        if node in memo:
            return memo[node]
        if node in mapping:
            out = mapping[node]
        elif isinstance(node, sp.Lambda):   # a body with a scalar argument: leaky_relu(x, s)
            out = node.xreplace({S: val for S, val in mapping.items() if not S.is_Matrix})
        elif isinstance(node, sp.MatrixBase) or not node.args:
            out = node
        else:
            args = [ev(a) for a in node.args]
            out = node.func(*args) if args != list(node.args) else node
            out = out.doit()
        if getattr(out, "is_Matrix", False) and not isinstance(out, sp.MatrixBase):
            out = sp.ImmutableMatrix(out.as_explicit().doit())
        memo[node] = out
        return out

    e = ev(e)
    if getattr(e, "is_Matrix", False):
        return np.array(e.evalf(), dtype=float)
    return float(sp.N(e))


def central(f_np, v, wrt):
    """∂f/∂wrt by central differences of the NumPy value."""
    base = np.array(v[wrt], dtype=float)
    grad = np.zeros_like(base)
    for index in np.ndindex(base.shape):
        step = np.zeros_like(base)
        step[index] = EPS
        plus = float(np.squeeze(f_np({**v, wrt: base + step})))
        minus = float(np.squeeze(f_np({**v, wrt: base - step})))
        grad[index] = (plus - minus) / (2 * EPS)
    return grad


def assert_close(got, expected, what, report, scale=1.0, rtol=RTOL):
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}\n{report()}"
    err = float(np.max(np.abs(got - expected), initial=0.0))
    tol = rtol * max(1.0, float(np.max(np.abs(expected), initial=0.0))) + 1e-9 * scale
    assert np.all(np.isfinite(got)) and err <= tol, (
        f"{what}: max error {err:.3e} > {tol:.1e}\n got {got.tolist()}\n expected {expected.tolist()}\n{report()}")


def _kwargs(v):
    return {str(S): val for S, val in v.items()}


def check(ctx, f, f_np, rng_seed, where=(), wrt=None):
    """Compare the generated code, the SymPy-evaluated gradient and finite differences for f."""
    X = ctx.X if wrt is None else wrt
    where = list(where)
    rng = np.random.default_rng(rng_seed)
    d = derive.derivation(f, X, where=dict(where) if where else None)
    G = d.gradient
    defined = {Z for Z, _ in where}
    args, _, _ = d.plan("value_and_gradient")
    free = [S for S in args]
    v = values_for(ctx, rng, free)

    def report():
        if os.environ.get("FUZZ_DUMP"):   # a reproducer: srepr of f and the definitions, and the values
            import pickle
            path = os.path.join(os.environ["FUZZ_DUMP"], f"fail-{abs(hash(f)) % 10 ** 8}.pickle")
            with open(path, "wb") as fh:
                pickle.dump({"f": sp.srepr(f), "where": [(sp.srepr(Z), sp.srepr(E)) for Z, E in where],
                             "wrt": sp.srepr(X), "values": {sp.srepr(S): val for S, val in v.items()},
                             "sizes": {str(k): val for k, val in ctx.sizes.items()}}, fh)
        return f"f = {f}\nwhere = {where}\nG = {G}\nsizes = {ctx.value_of_size}\n--- gradient source:\n" + \
            d.source("gradient").split("def gradient")[-1]

    # the value, independently (NumPy), far enough from every kink
    try:
        with np.errstate(all="raise"):
            value = float(np.squeeze(f_np(v)))
            fd = central(f_np, v, X)
    except (Kink, FloatingPointError):
        assume(False)
    assume(np.isfinite(value) and abs(value) < 1e6 and np.all(np.isfinite(fd)) and np.max(np.abs(fd)) < 1e6)
    scale = max(1.0, abs(value))

    # (a) the symbolic gradient evaluated by SymPy (intermediates evaluated by SymPy too)
    env = dict(v)
    for Z, E in where:
        env[Z] = sympy_value(E, ctx, env)
    sym = sympy_value(G, ctx, env)
    if not X.is_Matrix:
        sym = np.float64(sym)
    elif sym.shape != fd.shape:   # a 1×1 gradient written as a scalar
        sym = np.broadcast_to(sym, fd.shape)
    assert_close(sym, fd, "SymPy-evaluated gradient vs finite differences", report, scale)
    assert_close(sympy_value(f, ctx, env), value, "SymPy value vs NumPy value", report, scale)

    # the derivation prints: its text (every step) and the gradient in LaTeX
    assert str(d).endswith(f"= {text(G)}") and derive.latex(G)

    # (b) the generated code: gradient, value, value_and_gradient, and lambdify of the gradient
    kw = _kwargs(v)
    grad = d.numpy("gradient")(**kw)
    assert_close(grad, fd, "generated gradient vs finite differences", report, scale)
    assert_close(d.numpy("value")(**kw), value, "generated value vs NumPy value", report, scale)
    both = d.numpy("value_and_gradient")(**kw)
    assert_close(both["f"], value, "value_and_gradient['f']", report, scale)
    assert_close(both[str(X)], fd, "value_and_gradient gradient", report, scale)
    if not where:
        lam_args = sorted(set(G.free_symbols) | {X}, key=str)
        read = set().union(*[a.shape for a in lam_args if a.is_Matrix])   # sizes read off the arrays' shapes
        lam_args = [S for S in lam_args if S not in defined and S not in read]
        got = derive.lambdify(lam_args, G)(*[v[S] for S in lam_args])
        assert_close(np.broadcast_to(got, np.shape(fd)), fd, "derive.lambdify(G) vs finite differences", report, scale)


def contexts():
    return st.builds(Context, symbolic=st.booleans(), n_value=st.sampled_from([2, 3]), m_value=st.sampled_from([2, 3]),
                     x_cols=st.sampled_from(["N", "M"]))


# ---------------------------------------------------------------------------------------------------- properties


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_functions_gradient_sympy_code_and_differences_agree(ctx, data, seed):
    depth = data.draw(st.integers(1, 3))
    f, f_np = scalar_f(ctx, data.draw, depth)
    assume(ctx.X in f.free_symbols)
    check(ctx, f, f_np, seed)


@pytest.mark.slow
@settings(max_examples=max(10, EXAMPLES // 2), **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_named_intermediates_chained(ctx, data, seed):
    """where={Z1: E1(X), Z2: E2(Z1, X)}, f = g(Z2, Z1): the intermediates are leaves of the later expressions."""
    draw = data.draw
    N, M = ctx.N, ctx.M
    shape1 = (N, draw(st.sampled_from([N, M])))
    shape2 = (draw(st.sampled_from([N, M])), M)
    Z1, Z2 = sp.MatrixSymbol("Z1", *shape1), sp.MatrixSymbol("Z2", *shape2)
    E1, e1 = gen(ctx, shape1, draw, draw(st.integers(1, 2)))
    assume(ctx.X in E1.free_symbols)
    ctx.extra = {shape1: [Z1]}
    E2, e2 = gen(ctx, shape2, draw, draw(st.integers(1, 2)))
    ctx.extra = {shape1: [Z1], shape2: [Z2, Z2]}
    f, g = scalar_f(ctx, draw, draw(st.integers(1, 2)))
    ctx.extra = {}
    assume(Z2 in f.free_symbols or Z1 in f.free_symbols)

    def f_np(v):
        w = dict(v)
        w[Z1] = e1(w)
        w[Z2] = e2(w)
        return g(w)

    check(ctx, f, f_np, seed, where=[(Z1, E1), (Z2, E2)])


@settings(max_examples=max(10, EXAMPLES // 4), **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_gradient_with_respect_to_a_scalar_symbol(ctx, data, seed):
    """∂f/∂s for a scalar argument s (a coefficient or an operand of the outer function)."""
    h = data.draw(st.sampled_from(SCALARS))
    f, f_np = scalar_f(ctx, data.draw, data.draw(st.integers(1, 3)))
    A, a = gen(ctx, (ctx.N, ctx.N), data.draw, 1)
    f2 = f + sp.sin(h) * sp.Trace(A) + h ** 2 * sp.log(1 + f ** 2)
    check(ctx, f2, lambda v: f_np(v) + np.sin(v[h]) * np.trace(a(v)) + v[h] ** 2 * np.log(1 + f_np(v) ** 2),
          seed, wrt=h)


NET_CASES = [(act, out, loss) for act in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus")
             for out, loss in (("identity", "half_sse"), ("identity", "mse"), ("sigmoid", "bce"),
                               ("softmax", "softmax_ce"), ("softmax", "half_sse"), ("tanh", "mse"),
                               ("softplus", "half_sse"), ("sigmoid", "softmax_ce"))]


@settings(max_examples=max(6, EXAMPLES // 4), **SETTINGS)
@given(case=st.sampled_from(NET_CASES), layout=st.sampled_from(sorted(derive.LAYOUTS)),
       sizes=st.lists(st.integers(2, 3), min_size=2, max_size=4), bias=st.booleans(),
       reduction=st.sampled_from(sorted(derive.REDUCTIONS)), decay=st.sampled_from([0, sp.Rational(1, 10)]),
       seed=st.integers(0, 2 ** 32 - 1))
def test_networks_generated_code_against_recursion_loss_differences(case, layout, sizes, bias, reduction, decay,
                                                                    seed):
    from verify import Spec, data, recursion

    act, out, loss = case
    net = derive.mlp(sizes, activation=act, output=out, loss=loss, layout=layout, bias=bias, reduction=reduction,
                     weight_decay=decay)
    result = derive.backprop(net)
    spec = Spec.of(net)
    X, Y, params = data.draw(net, np.random.default_rng(seed), data.dimensions(net, 3, 3), np.float64)
    if act in ("relu", "leaky_relu"):
        # away from the kinks: every pre-activation of a hidden layer
        Zs, _ = recursion.forward(spec, X, params)
        assume(all(np.min(np.abs(Z)) > 1e-3 for Z in Zs[:-1]))
    got = result.numpy("loss_and_gradients")(X=X, Y=Y, **params)
    L = recursion.loss(spec, X, Y, params)
    assert abs(float(got["loss"]) - L) <= 1e-9 * max(1, abs(L))
    for name, P in params.items():
        fd = central(lambda w: recursion.loss(spec, X, Y, {**params, name: w["P"]}), {"P": P}, "P")
        assert_close(got[name], fd, f"network {net}: ∂L/∂{name}", lambda: result.source("loss_and_gradients"))


# ------------------------------------------------------------------------------ printer branches, deterministically


def _run(args, expr, values):
    return derive.lambdify(args, expr)(*values)


def test_printer_corner_cases_against_sympy():
    """Expressions the fuzzer reaches rarely, each printed and compared with SymPy's own evaluation."""
    n = sp.Symbol("n", integer=True, positive=True)
    ctx = Context(True, 3, 2, "N")
    A, B = sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("B", n, n)
    b = sp.MatrixSymbol("b", n, 1)
    rng = np.random.default_rng(1)
    v = {A: rng.normal(size=(3, 3)), B: rng.normal(size=(3, 3)), b: rng.normal(size=(3, 1)), SCALARS[0]: 0.7}
    ctx.sizes = {n: 3}
    s = SCALARS[0]
    W = sp.MatAdd(sp.MatMul(4, sp.Identity(n)), sp.MatMul(sp.Rational(3, 10), A.applyfunc(sp.tanh)))
    cases = [
        sp.MatMul(sp.OneMatrix(n, n), A),                 # 1 A: column sums broadcast
        sp.MatMul(A, sp.OneMatrix(n, n)),                 # A 1: row sums broadcast
        sp.MatMul(sp.OneMatrix(1, n), A),                 # 1ᵀ A
        sp.MatMul(A, sp.OneMatrix(n, 1)),                 # A 1
        sp.MatMul(sp.OneMatrix(n, 1), b.T),               # 1 bᵀ alone
        sp.MatMul(2, A, sp.OneMatrix(n, 1)),
        sp.MatMul(-1, sp.OneMatrix(1, n), A, B),
        sp.MatMul(A, sp.Inverse(W), B),                   # solve in the middle
        sp.MatMul(A, B, sp.Inverse(W)),                   # solve from the right
        sp.MatMul(sp.Inverse(W), B),
        sp.MatMul(sp.Determinant(W), sp.Inverse(W)),      # adjugate
        sp.MatMul(sp.Determinant(W), sp.Inverse(sp.Transpose(W))),
        sp.MatMul(sp.Determinant(B), sp.Inverse(W)),      # a determinant of another matrix: no adjugate
        HadamardPower(ElementwiseApplyFunction(sp.Lambda(x, sp.Integer(2)), A), 2),   # (2·1)^∘2 = 4·1
        sp.MatAdd(sp.OneMatrix(n, n), sp.MatMul(b, sp.OneMatrix(1, n))),      # 1 + b 1ᵀ keeps its shape
        sp.MatAdd(sp.MatMul(b, sp.OneMatrix(1, n)), sp.MatMul(sp.OneMatrix(n, 1), b.T)),
        sp.MatAdd(sp.MatMul(-1, b, sp.OneMatrix(1, n)), A),
        sp.MatAdd(A, sp.MatMul(s, sp.OneMatrix(n, n))),
        sp.MatAdd(A, sp.ZeroMatrix(n, n), B) if False else sp.MatMul(s ** -1, A),
        HadamardPower(sp.MatAdd(HadamardPower(A, 2), sp.OneMatrix(n, n)), sp.Rational(3, 2)),
        HadamardPower(sp.MatAdd(HadamardPower(A, 2), sp.OneMatrix(n, n)), -1),
        A.applyfunc(sp.Lambda(x, derive.leaky_relu(x, s))),
        A.applyfunc(sp.Lambda(x, derive.leaky_relu(x, 2))),
        A.applyfunc(sp.Lambda(x, sp.Heaviside(x))),
        A.applyfunc(sp.Lambda(x, sp.Heaviside(x, 0))),
        A.applyfunc(sp.Lambda(x, sp.Max(x, 0.1, -x))),
        A.applyfunc(sp.Lambda(x, sp.Min(x, 0.1))),
        LogSoftmax(A, 0), LogSoftmax(A, 1),
        sp.MatMul(sp.Trace(sp.MatAdd(A, B)), A),
        sp.MatMul(sp.Trace(sp.MatMul(2, A, B)), A),
        sp.MatMul(sp.Trace(sp.MatMul(A.T, B)), A),
        sp.MatMul(sp.Trace(sp.MatMul(A, sp.OneMatrix(n, n))), A),
        sp.MatMul(sp.Trace(A), sp.Identity(n)),
        sp.MatMul(sp.log(sp.Determinant(W)), A),
        sp.MatMul(sp.Determinant(W), A),
        sp.MatMul(MatrixElement(A, 1, 0), A),
        sp.MatPow(A, 3),
        sp.ZeroMatrix(n, n),
        sp.Transpose(sp.MatAdd(A, B)),
        HadamardProduct(sp.MatMul(sp.OneMatrix(n, n), A), sp.MatMul(B, sp.OneMatrix(n, n))),  # both broadcast
        A,                                                # an argument returned as it is
        sp.MatMul(sp.Abs(sp.Trace(A)), A),                # a builtin: abs
    ]
    failures = []
    for expr in cases:
        args = sorted(expr.free_symbols - {n}, key=str) or [A]   # A gives the size n
        vals = [v[S] for S in args]
        expected = sympy_value(expr, ctx, {S: v[S] for S in args})
        try:
            got = _run(args, expr, vals)
        except Exception as e:  # noqa: BLE001 — reported with the expression
            failures.append(f"{expr}: {type(e).__name__}: {e}")
            continue
        got = np.broadcast_to(np.asarray(got, dtype=float), expected.shape)
        if not np.allclose(got, expected, rtol=1e-9, atol=1e-9):
            failures.append(f"{expr}: got {got.tolist()}, SymPy {np.asarray(expected).tolist()}\n"
                            f"{derive.lambdify(args, expr).source.splitlines()[-1]}")
    # gradients the fuzzer reaches rarely: |W| W⁻ᵀ (adjugate), an entry at a symbolic size (E_ij), a power of a trace
    grads = [(sp.Determinant(A), A), (MatrixElement(A, 1, 0), A), (sp.Trace(sp.MatMul(2, A, B)) ** 3, A),
             (sp.Determinant(W) * sp.Trace(sp.MatMul(A, B)), B)]
    for f, X in grads:
        d = derive.derivation(f, X)
        args = d.plan()[0]
        expected = sympy_value(d.gradient, ctx, {S: v[S] for S in args})
        try:
            got = d.numpy()(**{str(S): v[S] for S in args})
            assert np.allclose(got, expected, rtol=1e-9, atol=1e-9), (got, expected)
            got = d.numpy("value")(**{str(S): v[S] for S in args})
            assert np.allclose(got, sympy_value(f, ctx, {S: v[S] for S in args}), rtol=1e-9, atol=1e-9), "value"
        except Exception as e:  # noqa: BLE001
            failures.append(f"∂({f})/∂{X}: {type(e).__name__}: {e}\n{d.source().splitlines()[-1]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("function", [sp.erf, sp.gamma, sp.loggamma])
def test_functions_without_an_array_api_counterpart_are_refused(function):
    """erf has no array API function (NumPyPrinter would write math.erf, which takes one number): refused by name."""
    A = sp.MatrixSymbol("A", 3, 3)
    with pytest.raises(derive.UnsupportedOperation, match=function.__name__):
        derive.lambdify([A], A.applyfunc(function))
    with pytest.raises(derive.UnsupportedOperation, match=function.__name__):
        derive.derivation(sp.Trace(A.applyfunc(function)), A).numpy("value")


def test_in_place_statements_of_named_intermediates():
    """Z2 = Z1 @ A − B and Z3 = Z2 @ A ⊙ (…): the code writes Z2 = Z1 @ A; Z2 -= B, Z3 *= …"""
    X, A, B = (sp.MatrixSymbol(k, 3, 3) for k in "XAB")
    Z1, Z2, Z3, Z4 = (sp.MatrixSymbol(f"Z{k}", 3, 3) for k in range(1, 5))
    where = {Z1: sp.MatMul(X, A), Z2: sp.MatAdd(sp.MatMul(Z1, A), sp.MatMul(-1, B)),
             Z3: HadamardProduct(sp.MatMul(Z2, A), Z1.applyfunc(sp.tanh)),
             Z4: sp.MatAdd(sp.MatMul(Z3, B), sp.MatMul(sp.MatrixSymbol("b", 3, 1), sp.OneMatrix(1, 3)), Z1)}
    f = sp.Trace(sp.MatMul(Z4, Z4.T))
    d = derive.derivation(f, X, where=where)
    rng = np.random.default_rng(3)
    v = {k: 0.5 * rng.normal(size=(3, 3)) for k in "XAB"}
    v["b"] = rng.normal(size=(3, 1))

    def f_np(w):
        z1 = w["X"] @ w["A"]
        z4 = ((z1 @ w["A"] - w["B"]) @ w["A"] * np.tanh(z1)) @ w["B"] + w["b"] + z1
        return np.trace(z4 @ z4.T)

    source = d.source()
    assert "-= B" in source and "*= " in source, source
    fd = central(lambda w: f_np({**v, "X": w["X"]}), {"X": v["X"]}, "X")
    assert_close(d.numpy()(**v), fd, "in-place gradient", lambda: source)
    t = A.applyfunc(sp.tanh)   # one node, used twice
    temporaries, _ = common_subexpressions(HadamardProduct(t, sp.MatMul(t, B)))   # default names
    assert temporaries


def test_code_checks_and_names():
    """The argument checks and the naming of generated code."""
    n = sp.Symbol("n", integer=True, positive=True)
    Nmat = sp.MatrixSymbol("n", n, n)   # a matrix n beside the size n
    xp_ = sp.MatrixSymbol("xp", n, n)
    f = sp.Trace(sp.MatMul(Nmat, xp_))
    d = derive.derivation(f, xp_)
    a, b = np.arange(9.0).reshape(3, 3), np.ones((3, 3))
    np.testing.assert_allclose(d.numpy()(n=a, xp=b), a.T)
    with pytest.raises(TypeError):
        d.numpy()(n=a)
    with pytest.raises(ValueError):
        d.numpy()(n=a, xp=np.ones((2, 2)))
    with pytest.raises(TypeError):
        derive.lambdify([Nmat, xp_], f)(a)
    assert "def gradient" in d.module() and "def value_and_gradient" in d.module()
    # only scalars: no array to take the namespace from
    s = SCALARS[0]
    g = derive.derivation(sp.sin(s) * s, s)
    assert abs(g.numpy()(s=0.3) - (np.cos(0.3) * 0.3 + np.sin(0.3))) < 1e-12
    # a size that is not a symbol or an integer
    with pytest.raises(ValueError):
        derive.lambdify([sp.MatrixSymbol("A", 2 * n, n)], sp.MatrixSymbol("A", 2 * n, n))
    # a free symbol that is not an argument
    with pytest.raises(ValueError):
        derive.lambdify([Nmat], sp.MatMul(s, Nmat))
    # one argument, not a list
    np.testing.assert_allclose(derive.lambdify(Nmat, sp.Transpose(Nmat))(a), a.T)


@settings(max_examples=max(10, EXAMPLES // 5), **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_functions_hvp_matches_differences_of_the_gradient(ctx, data, seed):
    """derive.hvp(f, X, V), derived forward from the gradient (no Hessian formed), against central differences of
    the gradient along V (the generated gradient, which the main property checks against f): every operator."""
    f, f_np = scalar_f(ctx, data.draw, data.draw(st.integers(1, 2)))
    assume(ctx.X in f.free_symbols)
    V = sp.MatrixSymbol("V_direction", *ctx.X.shape)
    h = derive.hvp_derivation(f, ctx.X, V)
    d = derive.derivation(f, ctx.X)
    rng = np.random.default_rng(seed)
    args, _, _ = h.plan()
    v = values_for(ctx, rng, [a for a in args if a != V])
    direction = rng.normal(size=ctx.shape_value(ctx.X.shape))
    step = 1e-5 * direction
    try:   # f smooth on the segment X ± εV (a kink more than 1e-3 away), finite, and moderate
        with np.errstate(all="raise"):
            values = [float(np.squeeze(f_np({**v, ctx.X: v[ctx.X] + s * step}))) for s in (-1, 0, 1)]
    except (Kink, FloatingPointError):
        assume(False)
    assume(all(np.isfinite(values)) and max(map(abs, values)) < 1e6)
    grad = d.numpy("gradient")
    kw = {str(a): val for a, val in v.items() if a in set(d.plan()[0])}
    plus = grad(**{**kw, str(ctx.X): v[ctx.X] + step})
    minus = grad(**{**kw, str(ctx.X): v[ctx.X] - step})
    expected = (np.asarray(plus) - np.asarray(minus)) / 2e-5
    assume(np.all(np.isfinite(expected)) and np.max(np.abs(expected)) < 1e6)
    got = h.numpy()(**_kwargs(v), V_direction=direction)

    def report():
        return f"f = {f}\nH V = {h.result}\n--- hvp source:\n" + h.source().split("def hvp")[-1]

    assert_close(np.broadcast_to(got, expected.shape), expected, "hvp vs differences of the gradient", report,
                 max(1.0, abs(values[1])), rtol=1e-6)   # the bar for second order


@settings(max_examples=max(10, EXAMPLES // 10), **SETTINGS)
@given(ctx=contexts(), data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_functions_hessian_times_vec_V_is_the_hvp(ctx, data, seed):
    """derive.hessian(f, X) (Kronecker form, read off dG) times vec V equals derive.hvp(f, X, V) (derived forward),
    the latter checked against differences of the gradient above: every operator, through the vec identities."""
    f, _ = scalar_f(ctx, data.draw, data.draw(st.integers(1, 2)))
    assume(ctx.X in f.free_symbols)
    V = sp.MatrixSymbol("V_direction", *ctx.X.shape)
    H = derive.hessian_derivation(f, ctx.X)
    h = derive.hvp_derivation(f, ctx.X, V)
    rng = np.random.default_rng(seed)
    args = sorted(set(H.plan()[0]) | set(h.plan()[0]), key=str)
    v = values_for(ctx, rng, [a for a in args if a != V])
    direction = rng.normal(size=ctx.shape_value(ctx.X.shape))
    with np.errstate(all="ignore"):
        product = h.numpy()(**{str(a): val for a, val in v.items() if a in set(h.plan()[0])}, V_direction=direction)
        matrix = H.numpy()(**{str(a): val for a, val in v.items() if a in set(H.plan()[0])})
    assume(np.all(np.isfinite(product)) and np.all(np.isfinite(matrix)) and np.max(np.abs(matrix)) < 1e6)
    got = np.asarray(matrix) @ np.reshape(np.transpose(direction), (-1, 1))
    expected = np.reshape(np.transpose(np.broadcast_to(product, direction.shape)), (-1, 1))

    def report():
        return f"f = {f}\nH = {H.result}\nH V = {h.result}"

    assert_close(got, expected, "H vec(V) vs the hvp", report, rtol=1e-9)   # two exact forms of one product
