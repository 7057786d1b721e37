"""The rule table: one differential rule per operator, and the trace identities, as data."""
from dataclasses import dataclass
from typing import Callable, Optional

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from .errors import UnsupportedOperation
from .expr import ScalarDifferential, d, hadamard_power
from .functions import Softmax, body_of, derivative
from .hadamard import derivative_matrix


@dataclass(frozen=True)
class Rule:
    """A rule of the method: its name, its statement in LaTeX, and (for differentials) d(node)."""

    name: str
    latex: str
    apply: Optional[Callable] = None
    children: Callable = lambda node: node.args

    def __str__(self):
        return self.name


def _sum(node, dep):
    # d(X ± Y) = dX ± dY
    return node.func(*[d(a) for a in node.args if dep(a)])


def _matmul(node, dep):
    # d(c X1 ⋯ Xk) = dc X1 ⋯ Xk + Σ_i c X1 ⋯ dXi ⋯ Xk
    coeff, mats = node.as_coeff_matrices()
    c = [] if coeff == 1 else [coeff]
    terms = [sp.MatMul(*c, *mats[:i], d(M), *mats[i + 1:]) for i, M in enumerate(mats) if dep(M)]
    if dep(coeff):
        terms.insert(0, sp.MatMul(d(coeff), *mats))
    return sp.MatAdd(*terms)


def _matpow(node, dep):
    # d(X^k) = Σ_{i<k} X^i dX X^{k-1-i} for a positive integer k
    A, k = node.args
    if dep(k) or not (k.is_Integer and k > 0):
        raise UnsupportedOperation("MatPow", node, "exponent must be a constant positive integer")
    return sp.MatAdd(*[sp.MatMul(*[A] * i, d(A), *[A] * (k - 1 - i)) for i in range(k)])


def _matmul_children(node):
    coeff, mats = node.as_coeff_matrices()
    return (coeff, *mats)


def _transpose(node, dep):
    # d(Xᵀ) = (dX)ᵀ
    return sp.Transpose(d(node.arg))


def _trace(node, dep):
    # d tr X = tr dX
    return sp.Trace(d(node.arg))


def _inverse(node, dep):
    # dX⁻¹ = −X⁻¹ dX X⁻¹
    return sp.MatMul(-1, node, d(node.arg), node)


def _det(node, dep):
    # d|X| = |X| tr(X⁻¹ dX)
    return node * sp.Trace(sp.MatMul(node.arg.I, d(node.arg)))


def _logdet(node, dep):
    # d log|X| = tr(X⁻¹ dX)
    A = node.args[0].arg
    return sp.Trace(sp.MatMul(A.I, d(A)))


def _hadamard(node, dep):
    # d(X ⊙ Y) = dX ⊙ Y + X ⊙ dY
    args = node.args
    return sp.MatAdd(*[HadamardProduct(*args[:i], d(M), *args[i + 1:]) for i, M in enumerate(args) if dep(M)])


def _hadamard_power(node, dep):
    # d X^{∘p} = p X^{∘(p−1)} ⊙ dX
    A, p = node.args
    if dep(p):
        raise UnsupportedOperation("HadamardPower", node, "exponent depends on the variable")
    return sp.MatMul(p, HadamardProduct(hadamard_power(A, p - 1), d(A))) if p != 1 else d(A)


def _elementwise(node, dep):
    # dσ(X) = σ'(X) ⊙ dX
    fprime_matrix, fprime = derivative_matrix(node.function, node.expr)
    if fprime.has(sp.Derivative, sp.Subs):
        raise UnsupportedOperation(f"elementwise {body_of(node.function)}", node, "its derivative is unknown")
    return HadamardProduct(fprime_matrix, d(node.expr))


def _softmax(node, dep):
    # d softmax(Z) = S ⊙ dZ − S ⊙ (1 1ᵀ (S ⊙ dZ)) with S = softmax(Z) over columns; over rows, (S ⊙ dZ) 1 1ᵀ
    local = HadamardProduct(node, d(node.arg))
    k = node.rows if node.axis == 0 else node.cols
    total = sp.MatMul(sp.OneMatrix(k, k), local) if node.axis == 0 else sp.MatMul(local, sp.OneMatrix(k, k))
    return sp.MatAdd(local, sp.MatMul(-1, HadamardProduct(node, total)))


def _entry(node, dep):
    # d(X_ij) = (dX)_ij
    return MatrixElement(d(node.parent), node.i, node.j)


def _scalar(node, dep):
    # d f(u1, …, uk) = Σ_i ∂f/∂u_i du_i (SymPy's scalar calculus gives ∂f/∂u_i, for real arguments)
    dummies = [sp.Dummy(real=True) for _ in node.args]
    f = node.func(*dummies)
    terms = []
    for u, x in zip(node.args, dummies):
        if dep(u):
            partial = derivative(f, x)
            if partial.has(sp.Derivative, sp.Subs):
                raise UnsupportedOperation(type(node).__name__, node, "its derivative is unknown")
            terms.append(partial.xreplace(dict(zip(dummies, node.args))) * ScalarDifferential(u))
    return sp.Add(*terms)


DIFFERENTIALS = {
    sp.MatAdd: Rule("sum rule", r"\mathrm{d}(X \pm Y) = \mathrm{d}X \pm \mathrm{d}Y", _sum),
    sp.MatMul: Rule("product rule", r"\mathrm{d}(XY) = \mathrm{d}X\,Y + X\,\mathrm{d}Y", _matmul, _matmul_children),
    sp.MatPow: Rule("power rule", r"\mathrm{d}(X^k) = \sum_{i<k} X^i\,\mathrm{d}X\,X^{k-1-i}", _matpow),
    sp.Transpose: Rule("transpose rule", r"\mathrm{d}(X^\top) = (\mathrm{d}X)^\top", _transpose),
    sp.Trace: Rule("trace rule", r"\mathrm{d}\,\mathrm{tr}X = \mathrm{tr}\,\mathrm{d}X", _trace),
    sp.Inverse: Rule("inverse rule", r"\mathrm{d}X^{-1} = -X^{-1}\,\mathrm{d}X\,X^{-1}", _inverse),
    sp.Determinant: Rule("determinant rule", r"\mathrm{d}|X| = |X|\,\mathrm{tr}(X^{-1}\mathrm{d}X)", _det),
    "logdet": Rule("log-determinant rule", r"\mathrm{d}\log|X| = \mathrm{tr}(X^{-1}\mathrm{d}X)", _logdet,
                   lambda node: (node.args[0].arg,)),
    HadamardProduct: Rule("Hadamard product rule",
                          r"\mathrm{d}(X \odot Y) = \mathrm{d}X \odot Y + X \odot \mathrm{d}Y", _hadamard),
    HadamardPower: Rule("Hadamard power rule",
                        r"\mathrm{d}X^{\circ p} = p\,X^{\circ (p-1)} \odot \mathrm{d}X", _hadamard_power),
    ElementwiseApplyFunction: Rule("elementwise rule",
                                   r"\mathrm{d}\sigma(X) = \sigma'(X) \odot \mathrm{d}X", _elementwise,
                                   lambda node: (node.expr,)),
    Softmax: Rule("softmax rule", r"\mathrm{d}\,\mathrm{softmax}(z) = s \odot \mathrm{d}z - s\,(s^\top \mathrm{d}z),\ "
                  r"s = \mathrm{softmax}(z)", _softmax, lambda node: (node.arg,)),
    MatrixElement: Rule("entry rule", r"\mathrm{d}(X_{ij}) = (\mathrm{d}X)_{ij}", _entry),
    sp.Add: Rule("sum rule", r"\mathrm{d}(u \pm v) = \mathrm{d}u \pm \mathrm{d}v", _scalar),
    sp.Mul: Rule("scalar product rule", r"\mathrm{d}(uv) = v\,\mathrm{d}u + u\,\mathrm{d}v", _scalar),
    sp.Pow: Rule("scalar power rule", r"\mathrm{d}(u^p) = p\,u^{p-1}\,\mathrm{d}u", _scalar),
    sp.core.function.Application: Rule("chain rule", r"\mathrm{d}f(u) = f'(u)\,\mathrm{d}u", _scalar),
    # a named intermediate Z := E: the engine substitutes dZ = dE and visits E
    "definition": Rule("definition", r"\mathrm{d}Z = \mathrm{d}E \text{ for } Z := E"),
}

IDENTITIES = {
    "cyclic": Rule("cyclic trace", r"\mathrm{tr}(AB) = \mathrm{tr}(BA)"),
    "transpose": Rule("trace of transpose", r"\mathrm{tr}(A^\top) = \mathrm{tr}(A)"),
    "hadamard": Rule("trace of Hadamard",
                     r"\mathrm{tr}(A^\top (B \odot C)) = \mathrm{tr}((A \odot B)^\top C)"),
    "scalar": Rule("scalar as trace", r"a = \mathrm{tr}(a)"),
    "linearity": Rule("linearity", r"\mathrm{tr}(A^\top (\alpha X + \beta Y)) = "
                      r"\alpha\,\mathrm{tr}(A^\top X) + \beta\,\mathrm{tr}(A^\top Y)"),
    "collect": Rule("collect terms", r"\mathrm{tr}(A^\top \mathrm{d}X) + \mathrm{tr}(B^\top \mathrm{d}X) = "
                    r"\mathrm{tr}((A + B)^\top \mathrm{d}X)"),
    "simplify": Rule("Hadamard algebra", r"A \odot B = B \odot A,\ A \odot (B + C) = A \odot B + A \odot C,\ "
                     r"A \odot A^{\circ -1} = \mathbb{1}"),
    "name": Rule("name the adjoint", r"\delta := \frac{\partial f}{\partial Z},\ "
                 r"\mathrm{tr}(G^\top \mathrm{d}Z) = \mathrm{tr}(\delta^\top \mathrm{d}Z)"),
    "read off": Rule("read off", r"\mathrm{d}f = \mathrm{tr}(G^\top \mathrm{d}X) \Rightarrow "
                     r"\frac{\partial f}{\partial X} = G"),
}


def rule_for(node, definitions):
    """The differential rule for node; None for a leaf (or an operator without a rule)."""
    if node in definitions:
        return DIFFERENTIALS["definition"]
    if isinstance(node, sp.log) and isinstance(node.args[0], sp.Determinant):
        return DIFFERENTIALS["logdet"]
    for cls in type(node).__mro__:
        if cls in DIFFERENTIALS:
            return DIFFERENTIALS[cls]
    return None
