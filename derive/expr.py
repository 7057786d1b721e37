"""Differentials as SymPy objects, and constructors that keep matrix expressions tidy."""
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixExpr


class Differential(MatrixExpr):
    """dA, the differential of a matrix expression A (same shape as A)."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]

    @property
    def shape(self):
        return self.args[0].shape

    def _eval_transpose(self):
        return None

    def _sympystr(self, printer):
        return "d" + printer.parenthesize(self.arg, 1000)

    def _latex(self, printer):
        return r"\mathrm{d}" + printer.parenthesize(self.arg, 1000)


class ScalarDifferential(sp.Function):
    """du, the differential of a scalar expression u."""

    nargs = 1

    @property
    def arg(self):
        return self.args[0]

    def _sympystr(self, printer):
        return "d" + printer.parenthesize(self.arg, 1000)

    def _latex(self, printer, exp=None):
        return r"\mathrm{d}" + printer.parenthesize(self.arg, 1000)


def d(node):
    """The differential of node: dA for a matrix, du for a scalar."""
    return Differential(node) if node.is_Matrix else ScalarDifferential(node)


def is_differential(e):
    return isinstance(e, (Differential, ScalarDifferential))


def has_differential(e):
    return e.has(Differential, ScalarDifferential)


def matmul(*factors):
    """The product of the factors, scalars pulled out and identities dropped."""
    factors = [f for f in factors if f is not None]
    if len(factors) == 1:
        return factors[0]
    return sp.MatMul(*factors).doit(deep=False)


def hadamard(*factors):
    """The Hadamard product of the factors: scalars pulled out, ⊙ with the all-ones matrix dropped."""
    coeff, matrices = sp.S.One, []
    for f in factors:
        if isinstance(f, sp.MatMul):
            c, mats = f.as_coeff_matrices()
            if len(mats) == 1:
                coeff, f = coeff * c, mats[0]
        if isinstance(f, HadamardProduct):
            matrices.extend(f.args)
        elif not isinstance(f, sp.OneMatrix):
            matrices.append(f)
    if not matrices:
        return matmul(coeff, factors[0])
    product = matrices[0] if len(matrices) == 1 else HadamardProduct(*matrices)
    return product if coeff == 1 else matmul(coeff, product)


def hadamard_power(A, p):
    """A^{∘p}, the elementwise power."""
    if p == 1:
        return A
    return HadamardPower(A, p)


def matadd(*terms):
    terms = [t for t in terms if not isinstance(t, sp.ZeroMatrix)]
    if len(terms) == 1:
        return terms[0]
    return sp.MatAdd(*terms).doit(deep=False)


def unit(shape, i, j):
    """E_ij: the matrix of the given shape with a single 1 at (i, j)."""
    rows, cols = shape
    if (rows, cols) == (1, 1):
        return sp.Identity(1)
    if rows.is_Integer and cols.is_Integer:
        return sp.ImmutableSparseMatrix(rows, cols, {(i, j): 1})
    p, q = sp.symbols("p q", cls=sp.Dummy)
    return sp.FunctionMatrix(rows, cols, sp.Lambda((p, q), sp.KroneckerDelta(p, i) * sp.KroneckerDelta(q, j)))
