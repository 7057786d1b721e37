"""Exact proofs for one concrete size: the loss written out entry by entry as a scalar SymPy expression,
differentiated entry by entry with SymPy's scalar `diff`, and compared with the derived matrix formula
made explicit — equal as expressions, no tolerance. Written without reference to `derive`.
"""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

LEAK = sp.Rational(1, 100)

# name -> σ as a scalar SymPy function, from the definitions (not from any derivative formula)
SCALAR = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + sp.exp(-z)),
    "tanh": sp.tanh,
    "relu": lambda z: sp.Max(0, z),
    "leaky_relu": lambda z: sp.Max(LEAK * z, z),
    "softplus": lambda z: sp.log(1 + sp.exp(z)),
}


def symbol_matrix(name, rows, cols):
    """The rows × cols matrix of real symbols name_i_j."""
    return sp.ImmutableMatrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}_{j}", real=True))


def _softmax_columns(Z):
    E = Z.applyfunc(sp.exp)
    return sp.ImmutableMatrix(Z.rows, Z.cols, lambda i, j: E[i, j] / sum(E[k, j] for k in range(Z.rows)))


def explicit_loss(spec, X, Y, params, weight_decay=None):
    """The loss of the architecture `spec` (a verify.Spec) as one scalar expression in the entries;
    `weight_decay` may give λ exactly (a SymPy number or symbol) instead of spec's float."""
    if spec.layout == "AW":
        X, Y = X.T, Y.T
    A = X
    L = len(spec.activations)
    for l, act in enumerate(spec.activations, 1):
        W = params[f"W{l}"] if spec.layout == "WA" else params[f"W{l}"].T
        Z = W * A
        if spec.has_bias(l):
            Z = Z + params[f"b{l}"] * sp.ones(1, Z.cols)
        A = _softmax_columns(Z) if act == "softmax" else Z.applyfunc(SCALAR.get(act) or act.function)
    data = data_loss(spec.loss, A, Y)
    if spec.reduction == "mean":
        data = data / A.cols
    decay = sum(sum(w ** 2 for w in params[f"W{l}"]) for l in range(1, L + 1))
    lam = (sp.nsimplify(spec.weight_decay, rational=True) if weight_decay is None
           else sp.sympify(weight_decay, strict=True))
    return data + lam / 2 * decay


def data_loss(loss, A, Y):
    """The loss (a name verify writes out, or a CustomLoss) summed over every entry of explicit A and Y, samples as
    columns, before the reduction."""
    E = A - Y
    written = {"half_sse": lambda: sp.Rational(1, 2) * sum(e ** 2 for e in E), "sse": lambda: sum(e ** 2 for e in E),
               "mse": lambda: sum(e ** 2 for e in E) / A.rows,
               "bce": lambda: -sum(y * sp.log(a) + (1 - y) * sp.log(1 - a) for y, a in zip(Y, A)),
               "softmax_ce": lambda: -sum(y * sp.log(a) for y, a in zip(Y, A))}
    if isinstance(loss, str):
        return written[loss]()
    # a loss given by ℓ(a, y): summed over every entry
    return sum(loss.function(a, y) for y, a in zip(Y, A)) / (A.rows if loss.per_output else 1)


def explicit(expr, env, dims=None):
    """The explicit value of a matrix (or scalar) expression: matrix symbols taken from `env` by name,
    symbolic sizes from `dims`."""
    memo, dims = {}, dict(dims or {})

    def size(k):
        return int(sp.sympify(k, strict=True).xreplace(dims))

    def value(e):
        if e in memo:
            return memo[e]
        if isinstance(e, sp.MatrixSymbol):
            out = env[e.name]
        elif e in dims:
            out = dims[e]
        elif isinstance(e, (sp.MatrixBase, sp.Lambda)) or not e.args:
            out = e
        elif isinstance(e, sp.OneMatrix):
            out = sp.ones(size(e.rows), size(e.cols))
        elif isinstance(e, sp.ZeroMatrix):
            out = sp.zeros(size(e.rows), size(e.cols))
        elif isinstance(e, sp.Identity):
            out = sp.eye(size(e.rows))
        elif isinstance(e, sp.MatMul):
            out = sp.Mul(*[value(a) for a in e.args if not a.is_Matrix]) * _product([value(a) for a in e.args
                                                                                      if a.is_Matrix])
        elif isinstance(e, sp.MatAdd):
            terms = [value(a) for a in e.args]
            out = terms[0]
            for t in terms[1:]:
                out = out + t
        elif isinstance(e, HadamardProduct):
            parts = [value(a) for a in e.args]
            out = parts[0]
            for p in parts[1:]:
                out = out.multiply_elementwise(p)
        elif isinstance(e, HadamardPower):
            p = value(e.exp)
            out = value(e.base).applyfunc(lambda x: x ** p)
        elif isinstance(e, ElementwiseApplyFunction):
            out = value(e.expr).applyfunc(e.function)
        elif isinstance(e, sp.Inverse):
            out = value(e.arg).inv()   # once, not once per entry
        elif isinstance(e, sp.MatPow):
            base, k = value(e.base), value(e.exp)
            # a 1×1 matrix to any power is its entry's power; X^−k is (X⁻¹)^k, the inverse taken once
            out = sp.Matrix([[base[0, 0] ** k]]) if base.shape == (1, 1) else \
                (base.inv() ** -k if k.is_negative else base ** k)
        elif isinstance(e, sp.Transpose):
            out = value(e.arg).T
        elif isinstance(e, sp.Trace):
            out = value(e.arg).trace()
        elif isinstance(e, sp.DiagMatrix):
            out = sp.diag(*list(value(e.args[0])))
        elif isinstance(e, MatrixElement):
            out = value(e.parent)[int(e.i), int(e.j)]
        elif isinstance(e, sp.MatrixExpr):
            # any other operator (e.g. a softmax class): rebuilt on explicit arguments, then SymPy's as_explicit
            out = e.func(*[value(a) for a in e.args]).as_explicit().doit()
        else:
            args = [value(a) for a in e.args]
            out = e.func(*args)
            if any(isinstance(a, sp.MatrixBase) for a in args):
                out = out.doit()  # a scalar of explicit matrices (det): its value
        if isinstance(out, sp.MatrixBase):
            out = sp.ImmutableMatrix(out)
        memo[e] = out
        return out

    return value(expr)


def _product(mats):
    out = mats[0]
    for M in mats[1:]:
        out = out * M
    return out


def _heaviside(e):
    """H(c u) written as H(u) or 1 − H(u) (c > 0; equal wherever u ≠ 0), so that equal steps look equal."""
    def rewrite(*args):
        u = args[0]
        if u.could_extract_minus_sign():
            return 1 - sp.Heaviside(sp.Mul(-1, u).as_content_primitive()[1])
        return sp.Heaviside(u.as_content_primitive()[1])
    return e.replace(sp.Heaviside, rewrite)


def _foreign(x):
    """Whether x applies a function class defined outside SymPy (e.g. the toolkit's σ, softplus, relu)."""
    return isinstance(x, sp.Function) and not type(x).__module__.startswith("sympy")


def canonical(e):
    """e in primitives both sides share: functions defined outside SymPy rewritten by their own rules
    (σ and softplus into exp, the rectifiers into Max), H(u) for the steps, whose derivative δ(u) is 0 almost
    everywhere (relu' = H); SymPy's tanh stays tanh."""
    e = e.replace(_foreign, lambda x: x.rewrite(sp.exp, deep=False).rewrite(sp.Max, deep=False))
    if e.has(sp.DiracDelta):
        e = e.replace(sp.DiracDelta, lambda *args: sp.S.Zero)  # a step's derivative: 0 almost everywhere
    return _heaviside(e)


def is_zero(e):
    """Whether e is identically zero, decided as a rational function: after `canonical`, every exp(c u)
    becomes t_u^c for a fresh symbol t_u, and the numerator over a common denominator must expand to 0."""
    e = canonical(e)
    if e == 0:
        return True
    symbol, values = {}, {}
    for a in sorted(e.atoms(sp.exp), key=sp.default_sort_key):
        # exp(c v) = t_v^c for a rational c, so that exp(−v) = 1/exp(v) and exp(2v) = exp(v)²
        c, v = a.args[0].as_content_primitive()
        if v.could_extract_minus_sign():
            c, v = -c, sp.Mul(-1, v)
        t = symbol.setdefault(sp.expand(v), sp.Dummy(f"t{len(symbol)}"))
        values[a] = t ** c
    generators = {}
    for a in sorted(e.atoms(sp.tanh), key=sp.default_sort_key):
        # tanh(u): one more generator, one per u multiplied out (u may come factored one way and expanded another)
        values[a] = generators.setdefault(sp.expand(a.args[0]), sp.Dummy(f"h{len(generators)}"))
    e = e.xreplace(values)
    numerator, _ = sp.fraction(sp.together(e))
    return sp.expand(numerator, power_exp=False, log=False) == 0
