"""Hadamard algebra: an elementwise matrix expression is a scalar expression in disguise.

Expressions built from ⊙, elementwise powers and functions, sums and scalar multiples of
same-shaped matrices map one-to-one onto scalar expressions (A ⊙ B ↦ ab, A^{∘p} ↦ a^p,
σ(A) ↦ σ(a), c·1 ↦ c). Simplifying the scalar image and mapping it back simplifies the matrix
expression; e.g. −(Y ⊘ A − (1−Y) ⊘ (1−A)) ⊙ A ⊙ (1−A) ↦ a − y ↦ A − Y.
"""
import math

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from ..errors import NotElementwise
from .expr import hadamard, hadamard_power, matadd, matmul, postorder, substitute, tp
from .functions import ELT, body_of, derivative, elementwise


def _is_elementwise(M):
    return isinstance(M, (sp.MatAdd, HadamardProduct, HadamardPower, ElementwiseApplyFunction)) or (
        isinstance(M, sp.MatMul) and len(M.as_coeff_matrices()[1]) == 1)


class Atom(sp.Symbol):
    """A symbol of the scalar image: never equal to a user's symbol of the same name (SymPy compares types), and
    ordered as a Symbol of that name, so that the simplified forms do not depend on it."""


Atom.__name__ = "Symbol"  # SymPy's sort key reads the class name


class Image:
    """The scalar image of elementwise matrix expressions of one shape; atoms become symbols."""

    def __init__(self, shape, budget=120):
        self.shape = shape
        self.symbol_of = {}
        self.atom_of = {}
        self.scalar_atom_of = {}
        self.budget = budget  # operators expanded at most; beyond, sub-expressions stay atoms

    def atom(self, M):
        if M not in self.symbol_of:
            s = Atom(f"_h{len(self.symbol_of)}")
            self.symbol_of[M] = s
            self.atom_of[s] = M
        return self.symbol_of[M]

    def to_scalar(self, M):
        """The scalar image of M; maximal non-elementwise sub-expressions become atoms."""
        self.budget -= 1
        if self.budget < 0:
            return self.atom(M)
        if isinstance(M, sp.OneMatrix) and M.shape == self.shape:
            return sp.S.One
        if isinstance(M, sp.ZeroMatrix):
            return sp.S.Zero
        if isinstance(M, sp.MatAdd):
            return sp.Add(*[self.to_scalar(t) for t in M.args])
        if isinstance(M, HadamardProduct):
            return sp.Mul(*[self.to_scalar(t) for t in M.args])
        if isinstance(M, HadamardPower):
            return sp.Pow(self.to_scalar(M.base), self.scalar(M.exp))
        if isinstance(M, sp.Transpose) and isinstance(M.arg, sp.MatAdd):
            # (A + B)ᵀ = Aᵀ + Bᵀ: (1 − yᵀ)ᵀ is 1 − y
            return sp.Add(*[self.to_scalar(tp(t)) for t in M.arg.args])
        if isinstance(M, sp.MatMul):
            coeff, mats = M.as_coeff_matrices()
            if len(mats) == 1:
                return self.scalar(coeff) * self.to_scalar(mats[0])
            if coeff != 1:
                # c (P Q) ↦ c·atom(P Q): the scalar factor stays outside the atom
                return self.scalar(coeff) * self.atom(matmul(*mats))
        if isinstance(M, ElementwiseApplyFunction) and not _is_elementwise(M.expr):
            # σ(A) ↦ σ(a) for an atom A; σ of an elementwise expression stays an atom itself
            body = body_of(M.function).xreplace({ELT: self.atom(M.expr)})
            return self.scalar(body) if body.has(sp.MatrixExpr) else body
        return self.atom(M)

    def scalar(self, c):
        """A scalar (a coefficient, an exponent, a body sin(a)·tr A) with its matrix-valued parts (tr, det, entries)
        as symbols: SymPy's scalar algebra cannot rebuild a matrix sum inside them."""
        if c.is_Number or c.is_Symbol:
            return c
        if isinstance(c, (sp.Add, sp.Mul, sp.Pow)) or (isinstance(c, sp.Function) and not any(a.is_Matrix for a in c.args)
                                                      and not c.has(sp.MatrixExpr)) or c.free_symbols & set(self.atom_of):
            return c.func(*[self.scalar(a) for a in c.args])
        for s, atom in self.scalar_atom_of.items():
            if atom == c:
                return s
        s = Atom(f"_c{len(self.scalar_atom_of)}")
        self.scalar_atom_of[s] = c
        return s

    def back(self, M):
        """The matrix preimage of e with scalar atoms restored."""
        return substitute(M, self.scalar_atom_of) if self.scalar_atom_of else M

    def from_scalar(self, e):
        """The matrix preimage of the scalar expression e."""
        atoms = e.free_symbols & set(self.atom_of)
        if not atoms:
            return sp.ZeroMatrix(*self.shape) if e == 0 else matmul(e, sp.OneMatrix(*self.shape))
        if e in self.atom_of:
            return self.atom_of[e]
        if e.is_Add:
            return matadd(*[self.from_scalar(t) for t in e.args])
        if e.is_Mul:
            scalars = [f for f in e.args if not (f.free_symbols & atoms)]
            matrices = [self.from_scalar(f) for f in e.args if f.free_symbols & atoms]
            return matmul(sp.Mul(*scalars), hadamard(*matrices))
        if e.is_Pow and not (e.exp.free_symbols & atoms):
            return hadamard_power(self.from_scalar(e.base), e.exp)
        applied = isinstance(e, (sp.Function, sp.Max, sp.Min))
        varying = [k for k, a in enumerate(e.args) if a.free_symbols & atoms] if applied else []
        if len(varying) == 1:
            # f(c1, u, c2) with one argument u that varies: f(c1, ·, c2) applied elementwise to u's preimage
            k = varying[0]
            return elementwise(e.func(*e.args[:k], ELT, *e.args[k + 1:]), self.from_scalar(e.args[k]))
        x = e.free_symbols & atoms
        if len(x) == 1:
            (s,) = x
            return elementwise(e.xreplace({s: ELT}), self.atom_of[s])
        raise NotElementwise(e)


def derivative_matrix(fn, A):
    """σ'(A) for the elementwise function fn, written in Hadamard form (σ(A) ⊙ (1 − σ(A)), …)."""
    image = Image(A.shape)
    fprime = derivative(body_of(fn), ELT)
    return image.from_scalar(fprime.xreplace({ELT: image.atom(A)})), fprime


def _expanded_terms(e):
    """An upper bound on the number of terms of expand(e), cheap to compute: a product of k binomials has 2^k, which
    is what a chain Z_k = tanh(Z_{k−1}) gives, so expand is tried only on small products."""
    if e.is_Add:
        return sum(_expanded_terms(a) for a in e.args)
    if e.is_Mul:
        return math.prod(_expanded_terms(a) for a in e.args)
    if e.is_Pow and e.exp.is_Integer:
        return _expanded_terms(e.base) ** min(abs(int(e.exp)), 64)
    return 1


def _cost(e):
    return (sp.count_ops(e), sp.default_sort_key(e))


def simplify(M, rewrite=None):
    """M with its elementwise algebra simplified, sub-expressions renamed by `rewrite`."""
    if rewrite:
        M = substitute(M, rewrite)
    if not M.is_Matrix:
        return M
    image = Image(M.shape)
    e = image.to_scalar(M)
    if e.is_Mul and len(e.args) > 8:
        # a long product (a chain Z_k = tanh(Z_{k−1}) adds a factor per step) is kept as it is: its factors come
        # simplified, and simplifying the whole product again at every step would make the chain quadratic
        return M
    candidates = [e, sp.factor_terms(e)]
    if sp.count_ops(e) <= 80 and _expanded_terms(e) <= 64:
        # terms that cancel once multiplied out: s − y(1 − s) − ys = s − y
        candidates.append(sp.expand(e))
        if any(p.exp.is_negative for p in e.atoms(sp.Pow)):
            # a quotient: cancel common factors, as in −(y/a − (1−y)/(1−a)) a(1−a) = a − y
            candidates.append(sp.cancel(e))
    best = min(candidates, key=_cost)
    try:
        out = image.back(image.from_scalar(best))
    except NotElementwise:
        return M
    # SymPy may have simplified the image on construction already (y a⁻¹ a = y): then keep the smaller
    if best == e and _size(out) >= _size(M):
        return M
    return out


def _size(M):
    """The number of distinct nodes in M."""
    return len(postorder(M, lambda node: node.args))


def textbook_form(M, rewrite=None):
    """M as a textbook writes it: a quotient over one common denominator, both factored, each factor (c − a) with
    its constant first ((A − Y) ⊘ (A ⊙ (1 − A)), not (A∘2 − A)^∘−1 ⊙ (Y − A)); M itself when it is no quotient."""
    if not M.is_Matrix:
        return M
    image = Image(M.shape)
    e = image.to_scalar(M)
    numerator, denominator = sp.fraction(sp.factor(sp.together(e)))
    if denominator.free_symbols.isdisjoint(image.atom_of) or e.is_Atom:
        return M
    flipped = []
    for f in sp.Mul.make_args(denominator):
        base, power = f.as_base_exp()
        # (a − c) = −(c − a): the sign moves to the numerator, once per odd power
        if base.is_Add and base.as_coeff_Add()[0].is_negative:
            base = -base
            numerator = numerator * (-1) ** power
        flipped.append(base ** power)
    numerator = sp.factor(numerator)
    try:
        return image.back(image.from_scalar(sp.Mul(numerator, *[1 / f for f in flipped], evaluate=False)))
    except NotElementwise:
        return M
