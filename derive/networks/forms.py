"""Equivalent forms of a result: diag(σ'(z)) matrices (seed 000) and index notation (seed 001, Andrew Ng)."""
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct

from ..core.expr import children, hadamard, matmul, postorder, substitute

I, J = sp.symbols("i j", integer=True, nonnegative=True)


def diag_form(M, carried=()):
    """M with every Hadamard product of column vectors written as a diagonal matrix times a vector:
    u ⊙ v = diag(v) u, where u is the factor that carries the error (contains one of `carried`)."""
    carried = tuple(carried)
    mapping = {}
    for node in postorder(M, children):
        if isinstance(node, HadamardProduct) and node.cols == 1:
            factors = [mapping.get(a, a) for a in node.args]
            k = next((i for i, f in enumerate(factors) if f.has(*carried)), 0) if carried else 0
            u, rest = factors[k], factors[:k] + factors[k + 1:]
            mapping[node] = matmul(sp.DiagMatrix(hadamard(*rest)), u)
    return substitute(M, mapping) if mapping else M


def index_form(M, i=I, j=J):
    """The (i, j) entry of M as a scalar expression: sums over the inner index of every product."""
    if not M.is_Matrix:
        return M
    return M._entry(i, j if M.cols != 1 else 0)
