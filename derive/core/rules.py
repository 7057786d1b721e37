"""The operator table: every operator registered once, with its differential rule and, for the operators that a
linear term of dX can have at its head, its transpose identity (how tr(Gᵀ op(T)) moves onto the adjoint G).

Rules come in families written once: linear operators (d L(X) = L(dX)), products (the product rule), elementwise
functions (d f(X) = f'(X) ⊙ dX), scalar functions (SymPy's scalar calculus). Each rule carries its statement in
LaTeX and as a SymPy form (lhs, rhs) that tests/test_rules.py checks numerically on random matrices."""
from dataclasses import dataclass
from typing import Callable, Optional

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import UnsupportedOperation
from .expr import LogDet, ScalarDifferential, d, hadamard, hadamard_power, has_differential, matmul, tp, unit
from .functions import ELT, FirstMax, Softmax, body_of, derivative, elementwise
from .hadamard import derivative_matrix

# The symbols of the statements' SymPy forms (3 × 3, so that every product, inverse and determinant is defined).
N = 3
X, Y, A, B, G = (sp.MatrixSymbol(k, N, N) for k in "XYABG")
x, z = sp.MatrixSymbol("x", N, 1), sp.MatrixSymbol("z", N, 1)
u, v, a = sp.symbols("u v a", real=True)
S = sp.Symbol("s", real=True)


@dataclass(frozen=True)
class Rule:
    """A rule of the method: its name, its statement in LaTeX and as a SymPy form () -> (lhs, rhs) (a differential
    d(E) on the left is the derivative of E along the differentials on the right), and for a differential rule
    how it applies, (node, dep) -> d(node), and which children it differentiates."""

    name: str
    latex: str
    form: Optional[Callable] = None
    apply: Optional[Callable] = None
    children: Callable = lambda node: node.args

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Operator:
    """One operator: its node class, its differential rule, and its transpose identity (None when no linear term
    has it at its head): transpose(G, t) -> (identity, G', t') with tr(Gᵀ t) = tr(G'ᵀ t') and t' one operator closer
    to the differential."""

    node: type
    differential: Rule
    transpose: Optional[Callable] = None
    identities: tuple = ()  # the identities (Rules) transpose may use


# A named intermediate Z := E: the engine substitutes dZ = dE and visits E.
DEFINITION = Rule("definition", r"\mathrm{d}Z = \mathrm{d}E \text{ for } Z := E")
CONSTANT = Rule("data", r"\mathrm{d}D = \mathbf{0} \text{ for data and constants } D \text{ (inputs, targets)}")

# The identities that bring df to Σ tr(Gᵀ dX): the transposes of the operators above, and the bookkeeping.
IDENTITIES = {
    "cyclic": Rule("cyclic trace", r"\mathrm{tr}(AB) = \mathrm{tr}(BA)",
                   lambda: (sp.Trace(A * B), sp.Trace(B * A))),
    "product transpose": Rule("transpose of a product", r"(AB)^\top = B^\top A^\top",
                              lambda: ((A * B).T, B.T * A.T)),
    "quotients": Rule("common denominator", r"A \oslash B + C \oslash D = (A \odot D + C \odot B) \oslash (B \odot D)",
                      lambda: (HadamardProduct(A, HadamardPower(B, -1)) + HadamardProduct(X, HadamardPower(Y, -1)),
                               HadamardProduct(HadamardProduct(A, Y) + HadamardProduct(X, B),
                                               HadamardPower(HadamardProduct(B, Y), -1)))),
    "transpose": Rule("trace of transpose", r"\mathrm{tr}(A^\top) = \mathrm{tr}(A)",
                      lambda: (sp.Trace(A.T), sp.Trace(A))),
    "hadamard": Rule("trace of Hadamard", r"\mathrm{tr}(A^\top (B \odot C)) = \mathrm{tr}((A \odot B)^\top C)",
                     lambda: (sp.Trace(A.T * HadamardProduct(B, X)), sp.Trace(HadamardProduct(A, B).T * X))),
    "scalar": Rule("trace is linear", r"a\,\mathrm{tr}(A) = \mathrm{tr}(aA)",
                   lambda: (a * sp.Trace(A), sp.Trace(a * A))),
    "entry": Rule("entry as trace", r"a\,A_{ij} = \mathrm{tr}((a E_{ij})^\top A)",
                  lambda: (a * A[0, 1], sp.Trace((a * unit(A.shape, 0, 1)).T * A))),
    "linearity": Rule("linearity", r"\mathrm{tr}(A^\top (\alpha X + \beta Y)) = "
                      r"\alpha\,\mathrm{tr}(A^\top X) + \beta\,\mathrm{tr}(A^\top Y)",
                      lambda: (sp.Trace(A.T * (u * X + v * Y)), u * sp.Trace(A.T * X) + v * sp.Trace(A.T * Y))),
    "collect": Rule("collect terms", r"\mathrm{tr}(A^\top \mathrm{d}X) + \mathrm{tr}(B^\top \mathrm{d}X) = "
                    r"\mathrm{tr}((A + B)^\top \mathrm{d}X)",
                    lambda: (sp.Trace(A.T * d(X)) + sp.Trace(B.T * d(X)), sp.Trace((A + B).T * d(X)))),
    "constant": Rule("constant factor", r"\mathrm{d}(cX) = c\,\mathrm{d}X \text{ for a constant } c",
                     lambda: (d(a * X), a * d(X))),
    "algebra": Rule("algebra", r"-(A - B) = B - A,\ AX + BX = (A + B)X,\ (A + B)^\top = A^\top + B^\top",
                    lambda: (-(A - B) + A * X + B * X + (A + B).T, B - A + (A + B) * X + A.T + B.T)),
    "simplify": Rule("Hadamard algebra", r"A \odot B = B \odot A,\ A \odot (B + C) = A \odot B + A \odot C,\ "
                     r"A \oslash A = \mathbf{1},\ A \oslash B = A \odot (\mathbf{1} \oslash B)",
                     lambda: (HadamardProduct(A, B + HadamardPower(A, -1)),
                              HadamardProduct(B, A) + sp.OneMatrix(N, N))),
    "name": Rule("name the adjoint", r"\delta := \frac{\partial f}{\partial Z},\ "
                 r"\mathrm{tr}(G^\top \mathrm{d}Z) = \mathrm{tr}(\delta^\top \mathrm{d}Z)"),
    "read off": Rule("read off", r"\mathrm{d}f = \mathrm{tr}(G^\top \mathrm{d}X) \Rightarrow "
                     r"\frac{\partial f}{\partial X} = G"),
}

OPERATORS: dict[type, "Operator"] = {}


def register(node, differential, transpose=None, identities=()):
    """Add the operator `node` (a SymPy class) to the table; `identities` are the Rules (or keys of IDENTITIES)
    its transpose may return."""
    OPERATORS[node] = Operator(node, differential, transpose,
                               tuple(IDENTITIES[k] if isinstance(k, str) else k for k in identities))


# ---- families --------------------------------------------------------------------------------------------------

def linear(name, latex, form, rebuild=lambda node, differentials: node.func(*differentials), children=None):
    """A rule for an operator linear in its arguments: d L(X, Y) = L(dX, dY), constant arguments kept."""
    def apply(node, dep):
        return rebuild(node, [d(a) if dep(a) else a for a in (children or (lambda n: n.args))(node)])
    return Rule(name, latex, form, apply, children or (lambda node: node.args))


def product(name, latex, form, factors, rebuild):
    """The product rule, for any product of factors(node): d(F1 ⋯ Fk) = Σ_i F1 ⋯ dFi ⋯ Fk."""
    def apply(node, dep):
        fs = factors(node)
        return sp.MatAdd(*[rebuild(*fs[:i], d(F), *fs[i + 1:]) for i, F in enumerate(fs) if dep(F)])
    return Rule(name, latex, form, apply, lambda node: tuple(dict.fromkeys(factors(node))))


def entrywise(name, latex, form, function, argument):
    """A rule for an elementwise function of one matrix: d f(X) = f'(X) ⊙ dX, f' by SymPy's scalar derivative."""
    def apply(node, dep):
        fprime_matrix, fprime = derivative_matrix(*function(node))
        if fprime.has(sp.Derivative, sp.Subs):
            raise UnsupportedOperation(f"elementwise {body_of(function(node)[0])}", node, "its derivative is unknown")
        return HadamardProduct(fprime_matrix, d(argument(node)))
    return Rule(name, latex, form, apply, lambda node: (argument(node),))


def _scalar(node, dep):
    # d f(u1, …, uk) = Σ_i ∂f/∂u_i du_i (SymPy's scalar calculus gives ∂f/∂u_i, for real arguments)
    dummies = [sp.Dummy(real=True) for _ in node.args]
    f = node.func(*dummies)
    terms = []
    for arg, var in zip(node.args, dummies):
        if dep(arg):
            partial = derivative(f, var)
            if partial.has(sp.Derivative, sp.Subs):
                raise UnsupportedOperation(type(node).__name__, node, "its derivative is unknown")
            terms.append(partial.xreplace(dict(zip(dummies, node.args))) * ScalarDifferential(arg))
    return sp.Add(*terms)


def scalar(name, latex, form):
    """A rule of scalar calculus: SymPy's partial derivatives, for a scalar function of scalars."""
    return Rule(name, latex, form, _scalar)


# ---- the table -------------------------------------------------------------------------------------------------

def _matmul_factors(node):
    coeff, mats = node.as_coeff_matrices()
    return [coeff, *mats] if coeff != 1 else list(mats)


def _transpose_matmul(G, t):
    coeff, mats = t.as_coeff_matrices()
    if has_differential(coeff):
        # tr(Gᵀ (du) M) = du · tr(Gᵀ M)
        return "linearity", sp.Trace(matmul(tp(G), *mats)), coeff
    k = next(i for i, M in enumerate(mats) if has_differential(M))
    P, Q = mats[:k], mats[k + 1:]
    # tr(Gᵀ c P T Q) = tr((c Pᵀ G Qᵀ)ᵀ T)
    G2 = matmul(coeff, tp(matmul(*P)) if P else None, G, tp(matmul(*Q)) if Q else None)
    return ("cyclic" if P or Q else "linearity"), G2, mats[k]


def _transpose_hadamard(G, t):
    k = next(i for i, M in enumerate(t.args) if has_differential(M))
    # tr(Gᵀ (H ⊙ T)) = tr((G ⊙ H)ᵀ T)
    return "hadamard", hadamard(G, *t.args[:k], *t.args[k + 1:]), t.args[k]


def _transpose_mul(G, t):
    inner = [f for f in t.args if has_differential(f)]
    if len(inner) != 1:
        return None
    # g · (c u) = (g c) · u
    others = list(t.args)
    others.remove(inner[0])
    return "linearity", G * sp.Mul(*others), inner[0]


def _matpow(node, dep):
    # X^k = X ⋯ X (k factors): the product rule
    base, k = node.args
    if base.shape == (1, 1) and not dep(k):
        # a 1×1 matrix is the scalar it holds: d(M^p) = p M^{p−1} dM
        return sp.MatMul(k, *([] if k == 1 else [base] if k == 2 else [sp.MatPow(base, k - 1)]), d(base))
    if dep(k) or not (k.is_Integer and k != 0):
        raise UnsupportedOperation("MatPow", node, "exponent must be a constant non-zero integer")
    if k > 0:
        return PRODUCT.apply(sp.MatMul(*[base] * int(k), evaluate=False), dep)
    # X^{−k} = (X⁻¹)^k, d X⁻¹ = −X⁻¹ dX X⁻¹: d X^{−k} = −Σ_{i=1}^{k} X^{−i} dX X^{−(k+1−i)}
    inverse = sp.Inverse(base)
    return sp.MatAdd(*[sp.MatMul(-1, *[inverse] * i, d(base), *[inverse] * (1 - int(k) - i))
                       for i in range(1, 1 - int(k))])


PRODUCT = product("product rule", r"\mathrm{d}(XY) = \mathrm{d}X\,Y + X\,\mathrm{d}Y",
                  lambda: (d(X * Y), d(X) * Y + X * d(Y)), _matmul_factors, lambda *fs: sp.MatMul(*fs))

register(sp.MatAdd, linear("sum rule", r"\mathrm{d}(X \pm Y) = \mathrm{d}X \pm \mathrm{d}Y",
                           lambda: (d(X - Y), d(X) - d(Y)),
                           rebuild=lambda node, ds: sp.MatAdd(*[t for t in ds if has_differential(t)])))
register(sp.MatMul, PRODUCT, _transpose_matmul, ("cyclic", "linearity"))
register(sp.MatPow, Rule("power rule", r"\mathrm{d}(X^k) = \sum_{i<k} X^i\,\mathrm{d}X\,X^{k-1-i},\ "
                         r"\mathrm{d}(X^{-k}) = -\sum_{i=1}^{k} X^{-i}\,\mathrm{d}X\,X^{-(k+1-i)}",
                         lambda: (d(X ** 3), d(X) * X * X + X * d(X) * X + X * X * d(X)), _matpow))
register(sp.Transpose, linear("transpose rule", r"\mathrm{d}(X^\top) = (\mathrm{d}X)^\top",
                              lambda: (d(X.T), d(X).T)),
         lambda G, t: ("transpose", tp(G), t.arg), ("transpose",))   # tr(Gᵀ Tᵀ) = tr(T G) = tr((Gᵀ)ᵀ T)
register(sp.Trace, linear("trace rule", r"\mathrm{d}\,\mathrm{tr}X = \mathrm{tr}\,\mathrm{d}X",
                          lambda: (d(sp.Trace(X)), sp.Trace(d(X)))),
         lambda G, t: ("scalar", matmul(G, sp.Identity(t.arg.rows)), t.arg), ("scalar",))   # g tr T = tr((gI)ᵀT)
register(MatrixElement, linear("entry rule", r"\mathrm{d}(X_{ij}) = (\mathrm{d}X)_{ij}",
                               lambda: (d(X[0, 1]), MatrixElement(d(X), 0, 1)),
                               rebuild=lambda node, ds: MatrixElement(ds[0], node.i, node.j),
                               children=lambda node: (node.parent,)),
         lambda G, t: ("entry", matmul(G, unit(t.parent.shape, t.i, t.j)), t.parent), ("entry",))  # g T_ij
register(sp.Inverse, Rule("inverse rule", r"\mathrm{d}X^{-1} = -X^{-1}\,\mathrm{d}X\,X^{-1}",
                          lambda: (d(X.I), -X.I * d(X) * X.I),
                          lambda node, dep: sp.MatMul(-1, node, d(node.arg), node)))
register(sp.Determinant, Rule("determinant rule", r"\mathrm{d}|X| = |X|\,\mathrm{tr}(X^{-1}\mathrm{d}X)",
                              lambda: (d(sp.Determinant(X)), sp.Determinant(X) * sp.Trace(X.I * d(X))),
                              lambda node, dep: node * sp.Trace(sp.MatMul(node.arg.I, d(node.arg)))))
register(LogDet, Rule("log-determinant rule", r"\mathrm{d}\log|X| = \mathrm{tr}(X^{-1}\mathrm{d}X)",
                      lambda: (d(LogDet(X)), sp.Trace(X.I * d(X))),
                      lambda node, dep: sp.Trace(sp.MatMul(node.arg.I, d(node.arg)))))
register(HadamardProduct,
         product("Hadamard product rule", r"\mathrm{d}(X \odot Y) = \mathrm{d}X \odot Y + X \odot \mathrm{d}Y",
                 lambda: (d(HadamardProduct(X, Y)), HadamardProduct(d(X), Y) + HadamardProduct(X, d(Y))),
                 lambda node: list(node.args), lambda *fs: HadamardProduct(*fs)),
         _transpose_hadamard, ("hadamard",))
_POWER_BASE = entrywise("Hadamard power rule", "", None, lambda node: (sp.Lambda(S, S ** node.exp), node.base),
                        lambda node: node.base)


def _power_children(node):
    return (node.base,) if node.exp.is_Number else (node.base, node.exp)


def _power_base(node, dep):
    if node.exp.is_Number:
        return _POWER_BASE.apply(node, dep)
    # p A^∘(p−1) ⊙ dA, written directly: SymPy's x**p runs factor_terms on p, which breaks on a sum of matrices in p
    return HadamardProduct(sp.MatMul(node.exp, hadamard_power(node.base, node.exp - 1)), d(node.base))


def _hadamard_power(node, dep):
    # d A^∘p = p A^∘(p−1) ⊙ dA + (A^∘p ⊙ log A) dp
    terms = [_power_base(node, dep)] if dep(node.base) else []
    if node.exp in _power_children(node) and dep(node.exp):
        terms.append(sp.MatMul(d(node.exp), HadamardProduct(node, elementwise(sp.log(ELT), node.base))))
    return sp.MatAdd(*terms)


register(HadamardPower,
         Rule("Hadamard power rule", r"\mathrm{d}X^{\circ p} = p\,X^{\circ (p-1)} \odot \mathrm{d}X \text{ for a "
              r"constant } p \text{, with } X^{\circ -p} = \mathbf{1} \oslash X^{\circ p}\text{; a varying } p "
              r"\text{ adds } (X^{\circ p} \odot \log X)\,\mathrm{d}p",
              lambda: (d(HadamardPower(X, 3)), 3 * HadamardProduct(hadamard_power(X, 2), d(X))),
              _hadamard_power, _power_children))
register(ElementwiseApplyFunction,
         entrywise("elementwise rule", r"\mathrm{d}f(X) = f^{\prime}(X) \odot \mathrm{d}X \text{ for } f \text{ entrywise "
                   r"(} \sigma, \log, \ldots\text{), as } \log^{\prime}(z) = 1/z",
                   lambda: (d(elementwise(sp.tanh(ELT), X)),
                            HadamardProduct(elementwise(1 - sp.tanh(ELT) ** 2, X), d(X))),
                   lambda node: (node.function, node.expr), lambda node: node.expr))
register(Softmax, Rule("softmax rule", r"\mathrm{d}\,\mathrm{softmax}(z) = s \odot \mathrm{d}z - s\,(s^\top "
                       r"\mathrm{d}z),\ s = \mathrm{softmax}(z) \text{ of a column } z\text{; of each row of } S"
                       r"\text{: } \mathrm{d}P = P \odot \mathrm{d}S - P \odot ((P \odot \mathrm{d}S)\,\mathbf{1}"
                       r"\mathbf{1}^\top),\ P = \mathrm{softmax}(S)",
                       lambda: (d(Softmax(z)), HadamardProduct(Softmax(z), d(z))
                                - Softmax(z) * (Softmax(z).T * d(z))),
                       lambda node, dep: _softmax(node), lambda node: (node.arg,)))
register(FirstMax, Rule("argmax mask", r"\mathrm{d}\,[T_j = \max_k T_k] = \mathbf{0} \text{ (piecewise constant)}",
                         lambda: (d(FirstMax(0, X, Y)), sp.ZeroMatrix(N, N)),
                         lambda node, dep: sp.ZeroMatrix(*node.shape), lambda node: node.taps))
register(sp.Add, scalar("sum rule", r"\mathrm{d}(u \pm v) = \mathrm{d}u \pm \mathrm{d}v",
                        lambda: (d(u - v), d(u) - d(v))))
register(sp.Mul, scalar("scalar product rule", r"\mathrm{d}(uv) = v\,\mathrm{d}u + u\,\mathrm{d}v",
                        lambda: (d(u * v), v * d(u) + u * d(v))),
         _transpose_mul, ("linearity",))
register(sp.Pow, scalar("scalar power rule", r"\mathrm{d}(u^p) = p\,u^{p-1}\,\mathrm{d}u",
                        lambda: (d(u ** 3), 3 * u ** 2 * d(u))))
register(sp.core.function.Application, scalar("chain rule", r"\mathrm{d}f(u) = f'(u)\,\mathrm{d}u",
                                              lambda: (d(sp.tanh(u)), (1 - sp.tanh(u) ** 2) * d(u))))


def _softmax(node):
    # d softmax(Z) = S ⊙ dZ − S ⊙ (1 1ᵀ (S ⊙ dZ)) with S = softmax(Z) over columns; over rows, (S ⊙ dZ) 1 1ᵀ
    local = HadamardProduct(node, d(node.arg))
    k = node.rows if node.axis == 0 else node.cols
    total = sp.MatMul(sp.OneMatrix(k, k), local) if node.axis == 0 else sp.MatMul(local, sp.OneMatrix(k, k))
    return sp.MatAdd(local, sp.MatMul(-1, HadamardProduct(node, total)))


def operator(node):
    """The table's entry for node's class (or its nearest registered base class; node may be the class itself);
    None for a leaf or an operator without a rule."""
    for cls in (node if isinstance(node, type) else type(node)).__mro__:
        if cls in OPERATORS:
            return OPERATORS[cls]
    return None


def cite(node, dep):
    """The rule that d node applies, for the log: the operator's differential rule, or "constant factor" for
    c X with only X varying (d(−f) = −df is no product rule)."""
    rule = operator(node).differential
    if isinstance(node, (sp.Mul, sp.MatMul)):
        varying = [f for f in node.args if dep(f)]
        if len(varying) == 1 and all(not f.is_Matrix for f in node.args if f is not varying[0]):
            return IDENTITIES["constant"]
    return rule


def transpose(G, t):
    """(identity rule, G', t') with tr(Gᵀ t) = tr(G'ᵀ t') (or g·t = g'·t' for scalars) and t' one operator closer
    to the differential; None when t's head operator has no transpose identity. An operator's transpose names its
    identity by a key of IDENTITIES or gives the Rule itself."""
    entry = operator(t)
    moved = entry.transpose(G, t) if entry and entry.transpose else None
    if moved is None:
        return None
    rule, G2, t2 = moved
    return (IDENTITIES[rule] if isinstance(rule, str) else rule), G2, t2


def unsupported():
    """[(operator, why)]: the SymPy operators users meet that the engine cannot differentiate (`derive operators`)."""
    out = [(cls.__name__, "no differential rule") for cls in (
        sp.KroneckerProduct, sp.DiagMatrix, sp.DiagonalMatrix, sp.DiagonalOf, sp.Adjoint, sp.Product, sp.Piecewise)
        if operator(cls) is None]
    out.append(("Sum", "only a sum that a matrix product writes (Σ_i a_i x_i) is read back as one"))
    for cls in (sp.floor, sp.ceiling, sp.frac):
        out.append((cls.__name__, "SymPy has no derivative for it"))
    out.append(("g(tr X) ⊙ …", "an elementwise body that depends on the variable"))
    return out
