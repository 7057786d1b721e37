"""Scalar activation functions as SymPy classes, and canonical elementwise application."""
from functools import lru_cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

# The bound variable of every elementwise Lambda, fixed so that equal applications are equal nodes.
ELT = sp.Dummy("x", dummy_index=0)


class sigmoid(sp.Function):
    """The logistic function σ(x) = 1/(1 + e^{-x}), with σ' = σ(1 − σ)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _latex(self, printer, exp=None):
        s = r"\sigma\left(%s\right)" % printer._print(self.args[0])
        return s if exp is None else r"%s^{%s}" % (s, exp)


class relu(sp.Function):
    """The rectifier max(0, x), with relu' = H(x) (taken as 0 at the kink)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Max(0, x)

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    def _latex(self, printer, exp=None):
        s = r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0])
        return s if exp is None else r"%s^{%s}" % (s, exp)


class softplus(sp.Function):
    """softplus(x) = log(1 + e^x), with softplus' = σ."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _latex(self, printer, exp=None):
        s = r"\operatorname{softplus}\left(%s\right)" % printer._print(self.args[0])
        return s if exp is None else r"%s^{%s}" % (s, exp)


_w = sp.Wild("w")
# Forms that users write by hand, recognised anywhere in a body as the classes above.
_KNOWN = (
    (1 / (1 + sp.exp(-_w)), sigmoid(_w)),
    (sp.exp(_w) / (1 + sp.exp(_w)), sigmoid(_w)),
    (sp.log(1 + sp.exp(_w)), softplus(_w)),
    (sp.Max(0, _w), relu(_w)),
)


@lru_cache(maxsize=None)
def canonical_body(body):
    """The body of an elementwise function in ELT, with hand-written activations replaced by their class."""
    for pattern, cls in _KNOWN:
        body = body.replace(pattern, cls)
    return body


def body_of(fn):
    """The scalar expression fn(ELT) of a SymPy function class or one-argument Lambda."""
    if isinstance(fn, sp.Lambda):
        (var,) = fn.variables
        return fn.expr.xreplace({var: ELT})
    return fn(ELT)


def elementwise(body, A):
    """σ(A) for σ given by its body in ELT; built directly so that equal calls give equal nodes."""
    if body == ELT:
        return A
    return MatrixExpr.__new__(ElementwiseApplyFunction, sp.Lambda(ELT, body), A)


def apply(fn, A):
    """The canonical elementwise application of fn (class or Lambda) to the matrix A."""
    return elementwise(canonical_body(body_of(fn)), A)
