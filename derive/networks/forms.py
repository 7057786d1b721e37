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
    """The (i, j) entry of M as a scalar expression: sums over the inner index of every product, kept as sums
    (Σ_k over 10 terms, not the 10 terms written out) for numeric sizes too."""
    if not M.is_Matrix:
        return M
    # numeric sizes stand in as symbols while the entry is formed (SymPy unrolls a sum of known length)
    sizes = {}

    def size(k):
        if k.is_Integer and k > 1:
            return sizes.setdefault(k, sp.Dummy(f"n{k}", integer=True, positive=True))
        return k

    leaves = [n for n in postorder(M, children) if isinstance(n, (sp.MatrixSymbol, sp.OneMatrix, sp.Identity))]
    symbolic = {n: n.func(*([n.name] if isinstance(n, sp.MatrixSymbol) else []), *map(size, n.shape))
                if not isinstance(n, sp.Identity) else sp.Identity(size(n.rows)) for n in leaves}
    entry = M.xreplace(symbolic)._entry(i, j if M.cols != 1 else 0)
    back = {s: k for k, s in sizes.items()}
    named = {v: k for k, v in symbolic.items()}
    return entry.xreplace({**back, **named})


class Formula(sp.Basic):
    """A formula a document writes as it is given (index notation, not a matrix expression): LaTeX and plain text
    with ⟨k⟩ standing for the k-th expression, printed in the document's notation."""

    def __new__(cls, tex, plain, *exprs):
        obj = sp.Basic.__new__(cls, *exprs)
        obj.tex, obj.plain = tex, plain
        return obj

    def _fill(self, template, printer):
        for k, e in enumerate(self.args):
            template = template.replace(f"⟨{k}⟩", printer._print(e))
        return template

    def _latex(self, printer):
        return self._fill(self.tex, printer)

    def _sympystr(self, printer):
        return self._fill(self.plain, printer)
