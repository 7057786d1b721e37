"""Differentials as SymPy objects, and constructors that keep matrix expressions tidy."""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixExpr

# Expressions the engine and the printers never look inside.
LEAVES: tuple[type, ...] = (sp.MatrixSymbol, sp.Symbol, sp.Number, sp.NumberSymbol, sp.Identity, sp.OneMatrix, sp.ZeroMatrix,
          sp.MatrixBase, sp.Lambda)  # and Select, added below where it is defined


def is_leaf(e):
    """Whether e is a leaf: one of LEAVES, or a node without arguments."""
    return isinstance(e, LEAVES) or not e.args


def children(e):
    """The sub-expressions of e that the engine, the simplifier and the printers look into: none for a leaf, the
    argument X of σ(X) (not σ's Lambda), every argument otherwise."""
    if is_leaf(e):
        return ()
    if isinstance(e, ElementwiseApplyFunction):
        return (e.expr,)
    return e.args


class OneArgument:
    """A node of one argument, built as given (no evaluation)."""

    def __new__(cls, arg):
        return sp.Basic.__new__(cls, arg)

    @property
    def arg(self):
        return self.args[0]


class Differential(OneArgument, MatrixExpr):
    """dA, the differential of a matrix expression A (same shape as A)."""

    shape = property(lambda self: self.arg.shape)

    def _eval_transpose(self):
        return None

    def _sympystr(self, printer):
        if getattr(printer, "prints_differentials", False):
            return printer._print_Differential(self)   # the toolkit's printers: d log(A) as well
        # dX for a symbol, d(X + Y) otherwise
        named = isinstance(self.arg, (sp.Symbol, sp.MatrixSymbol))
        return "d" + (printer._print(self.arg) if named else f"({printer._print(self.arg)})")


class ScalarDifferential(sp.Function):
    """du, the differential of a scalar expression u."""

    nargs = 1

    @property
    def arg(self):
        return self.args[0]

    def _sympystr(self, printer):
        if getattr(printer, "prints_differentials", False):
            return printer._print_Differential(self)   # the toolkit's printers: d log(A) as well
        # dX for a symbol, d(X + Y) otherwise
        named = isinstance(self.arg, (sp.Symbol, sp.MatrixSymbol))
        return "d" + (printer._print(self.arg) if named else f"({printer._print(self.arg)})")


def d(node):
    """The differential of node: dA for a matrix, du for a scalar."""
    return Differential(node) if node.is_Matrix else ScalarDifferential(node)


def has_differential(e):
    """Whether e contains a differential; walks the DAG, each shared node once."""
    stack, seen = [e], set()
    while stack:
        node = stack.pop()
        if isinstance(node, (Differential, ScalarDifferential)):
            return True
        for a in node.args:
            if id(a) not in seen:
                seen.add(id(a))
                stack.append(a)
    return False


def norm_base(B):
    """u where the matrix B is uᵀu (tr B = ‖u‖_F², and B = ‖u‖₂² for a column u), else None."""
    if not isinstance(B, sp.MatMul):
        return None
    coeff, mats = B.as_coeff_matrices()
    if coeff != 1:
        return None
    for k in range(1, len(mats)):
        left, u = matmul(*mats[:k]), matmul(*mats[k:])
        if sp.Transpose(u).doit() == left.doit():
            return u
    return None


def tp(M):
    """Mᵀ, pushed through products and double transposes only (never into a large operand)."""
    if isinstance(M, sp.MatPow) and M.shape == (1, 1):
        # a 1×1 matrix is its own transpose: (xᵀx)^(-1/2) for ((xᵀx)^(-1/2))ᵀ (other 1×1 operands keep the
        # textbook's form: Wᵀ δ, δᵀ 1, (a − y)ᵀ(a − y))
        return M
    if isinstance(M, sp.Transpose):
        return M.arg
    if isinstance(M, sp.MatMul):
        coeff, mats = M.as_coeff_matrices()
        return matmul(coeff, *[tp(A) for A in reversed(mats)])
    if isinstance(M, sp.Inverse):
        # (M⁻¹)ᵀ = (Mᵀ)⁻¹; not M.T, which transposes deep into M with doit() (an entry becomes a Sum)
        return sp.Inverse(tp(M.arg))
    if isinstance(M, (sp.MatrixSymbol, sp.Identity, sp.OneMatrix, sp.ZeroMatrix, Differential)):
        return M.T
    return sp.Transpose(M)


def _inverse_pair(A, B):
    """Whether A B = I because one factor is the inverse of the other."""
    return (isinstance(B, sp.Inverse) and B.arg == A) or (isinstance(A, sp.Inverse) and A.arg == B)


def matmul(*factors):
    """The product of the factors: flattened, scalars pulled out, identities dropped, 1 1ᵀ merged.

    Built by hand rather than with MatMul.doit(), whose canonicalisation distributes over sums and
    re-evaluates every operand (exponential on expressions with shared sub-expressions).
    """
    coeff, mats, identity = sp.S.One, [], None
    for f in factors:
        if f is None:
            continue
        f = sp.sympify(f, strict=True)
        if isinstance(f, sp.MatMul):
            c, ms = f.as_coeff_matrices()
            coeff, parts = coeff * c, ms
        elif f.is_Matrix:
            parts = [f]
        else:
            coeff, parts = coeff * f, []
        for M in parts:
            if isinstance(M, sp.Identity) or (isinstance(M, sp.OneMatrix) and M.shape == (1, 1)):
                identity = M  # I, or the 1×1 all-ones matrix: dropped unless it is the only factor
            elif mats and _inverse_pair(mats[-1], M):
                # X X⁻¹ = X⁻¹ X = I
                identity = sp.Identity(M.cols)
                mats.pop()
            elif isinstance(M, sp.OneMatrix) and mats and isinstance(mats[-1], sp.OneMatrix):
                # 1_{p×q} 1_{q×r} = q 1_{p×r}
                coeff *= M.rows
                mats[-1] = sp.OneMatrix(mats[-1].rows, M.cols)
            else:
                mats.append(M)
    if not mats:
        mats = [identity]
    if coeff == 0 or any(isinstance(M, sp.ZeroMatrix) for M in mats):
        return sp.ZeroMatrix(mats[0].rows, mats[-1].cols)
    if coeff == 1 and len(mats) == 1:
        return mats[0]
    return sp.MatMul(*([] if coeff == 1 else [coeff]), *mats)


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
    """The sum of the terms: flattened, zeros dropped, like terms combined (c1 X + c2 X = (c1 + c2) X)."""
    collected = {}
    for t in terms:
        for u in (t.args if isinstance(t, sp.MatAdd) else (t,)):
            if isinstance(u, sp.ZeroMatrix):
                continue
            c, M = u.as_coeff_mmul()
            M = matmul(*M.args) if isinstance(M, sp.MatMul) else M
            collected[M] = collected.get(M, 0) + c
    parts = [matmul(c, M) for M, c in collected.items() if c != 0]
    if not parts:
        return sp.ZeroMatrix(*terms[0].shape)
    return parts[0] if len(parts) == 1 else sp.MatAdd(*parts)


class Adjugate(OneArgument, MatrixExpr):
    """adj(X) = |X| X⁻¹, the transposed cofactor matrix (defined for a singular X too)."""

    shape = property(lambda self: self.arg.shape)

    def _entry(self, i, j, **kwargs):
        return (sp.Determinant(self.arg) * sp.Inverse(self.arg))[i, j]


class LogDet(OneArgument, sp.Expr):
    """log |X|, the logarithm of a determinant, as one node (log det X in code, from slogdet)."""

    is_commutative = True

    def doit(self, **hints):
        # log of the value where the determinant evaluates; kept whole where it does not (SymPy cannot take Abs or
        # re of a determinant of a sum, which its printers and assumptions ask for)
        det = sp.Determinant(self.arg).doit(**hints)
        return self if isinstance(det, sp.Determinant) else sp.log(det)

    def _eval_rewrite_as_log(self, arg, **kwargs):
        return sp.log(sp.Determinant(arg))


class Unit(MatrixExpr):
    """E_ij: the rows × cols matrix with a single 1 at (i, j)."""

    def __new__(cls, rows, cols, i, j):
        return sp.Basic.__new__(cls, *(sp.sympify(a, strict=True) for a in (rows, cols, i, j)))

    @property
    def shape(self):
        return self.args[:2]

    @property
    def index(self):
        return self.args[2:]

    def _entry(self, p, q, **kwargs):
        i, j = self.index
        return sp.KroneckerDelta(p, i) * sp.KroneckerDelta(q, j)


class Select(MatrixExpr):
    """The count × n selection matrix S with S_ik = 1 where k = start + i·stride and 0 ≤ k < n: S M takes rows start,
    start + stride, … of M (a row outside M is zero: padding), M Sᵀ its columns; `name` is how documents write it
    (E_1, S_0). A constant: code slices instead of forming it."""

    def __new__(cls, name, n, start, count, stride=1):
        name = name if isinstance(name, sp.Symbol) else sp.Symbol(name)
        return sp.Basic.__new__(cls, name, *(sp.Integer(a) for a in (n, start, count, stride)))

    @property
    def name(self):
        return self.args[0].name

    @property
    def free_symbols(self):
        return set()   # a constant: its name is a label

    @property
    def n(self):
        return int(self.args[1])

    @property
    def start(self):
        return int(self.args[2])

    @property
    def stride(self):
        return int(self.args[4])

    @property
    def shape(self):
        return self.args[3], self.args[1]

    def _entry(self, i, k, **kwargs):
        # 1 where k = start + i·stride (inside 0 … n − 1)
        target = self.start + i * self.stride
        if target.is_Integer and not 0 <= target < self.n:
            return sp.S.Zero
        return sp.KroneckerDelta(k, target)


class OneHotRows(sp.MatrixSymbol):
    """An input whose every row holds a single 1 (m × V: sample i's token): code takes it as the index vector of
    those 1s (or one-hot), and gathers or scatter-adds instead of multiplying by it."""

    vocabulary_axis = 1


class OneHotColumns(sp.MatrixSymbol):
    """An input whose every column holds a single 1 (V × m, samples as columns); see OneHotRows."""

    vocabulary_axis = 0


def one_hot(M):
    """(the one-hot input, whether its rows are one-hot here: P = M, or Pᵀ = M) for a one-hot input or its transpose,
    None for any other factor."""
    transposed = isinstance(M, sp.Transpose)
    X = M.arg if transposed else M
    if not isinstance(X, (OneHotRows, OneHotColumns)):
        return None
    return X, (X.vocabulary_axis == 1) != transposed


class Vec(OneArgument, MatrixExpr):
    """vec A: the columns of A stacked into one column (column-major), rc × 1 for A r × c."""

    shape = property(lambda self: (self.arg.rows * self.arg.cols, sp.S.One))

    def _entry(self, k, _, **kwargs):
        # entry k of vec A is A_{k mod r, k div r}
        return self.arg[k % self.arg.rows, k // self.arg.rows]


class Commutation(MatrixExpr):
    """K_{r,c}: the rc × rc permutation matrix with K vec A = vec Aᵀ for every r × c matrix A. A constant: code
    transposes instead of forming it where it multiplies a vec."""

    def __new__(cls, rows, cols):
        return sp.Basic.__new__(cls, sp.sympify(rows, strict=True), sp.sympify(cols, strict=True))

    @property
    def shape(self):
        size = self.args[0] * self.args[1]
        return size, size

    def _entry(self, p, q, **kwargs):
        # row i c + j of K holds entry (i, j) of Aᵀ, which is entry j r + i of vec A
        r, c = self.args
        return sp.KroneckerDelta(q, (p % c) * r + p // c)


def vec(A):
    """vec A; A itself for a column."""
    return A if A.cols == 1 else Vec(A)


def _as_vec(v, rows, cols):
    """V with vec V = v, for V of shape rows × cols; None when v is not known to be such a vec."""
    if isinstance(v, Vec) and v.arg.shape == (rows, cols):
        return v.arg
    return v if v.cols == 1 and cols == 1 and v.rows == rows else None


def applied_to_vec(mats):
    """The factors of a product with each operator applied to the vec on its right, right to left, so that a Hessian
    applied to a vector is never formed: (B ⊗ A) vec V = vec(A V Bᵀ), K vec V = vec Vᵀ, diag(vec H) vec V =
    vec(H ⊙ V)."""
    mats = list(mats)
    k = len(mats) - 2
    while k >= 0:
        M, v, new = mats[k], mats[k + 1], None
        if isinstance(M, sp.KroneckerProduct) and len(M.args) == 2:
            B, A = M.args
            V = _as_vec(v, A.cols, B.cols)
            new = None if V is None else vec(matmul(A, V, tp(B)))
        elif isinstance(M, Commutation):
            V = _as_vec(v, *M.args)
            new = None if V is None else vec(tp(V))
        elif isinstance(M, sp.DiagMatrix):
            w = M.args[0]
            H = w.arg if isinstance(w, Vec) else w if w.cols == 1 else tp(w)   # diag of a row is diag of its column
            V = _as_vec(v, *H.shape)
            new = None if V is None else vec(hadamard(H, V))
        if new is not None:
            mats[k:k + 2] = [new]
        k -= 1
    return mats


def kron(A, B):
    """A ⊗ B, with I_1 ⊗ B = B and A ⊗ I_1 = A."""
    if A.shape == (1, 1) and isinstance(A, sp.Identity):
        return B
    if B.shape == (1, 1) and isinstance(B, sp.Identity):
        return A
    if isinstance(A, sp.ZeroMatrix) or isinstance(B, sp.ZeroMatrix):
        return sp.ZeroMatrix(A.rows * B.rows, A.cols * B.cols)
    return sp.KroneckerProduct(A, B)


def unit(shape, i, j):
    """E_ij: the matrix of the given shape with a single 1 at (i, j)."""
    rows, cols = shape
    if (rows, cols) == (1, 1):
        return sp.Identity(1)
    if rows.is_Integer and cols.is_Integer:
        return sp.ImmutableSparseMatrix(rows, cols, {(i, j): 1})
    return Unit(rows, cols, i, j)


def substitute(e, mapping, memo=None):
    """e with sub-expressions replaced by `mapping`, each shared node rebuilt once (xreplace on a DAG)."""
    memo = {} if memo is None else memo
    if e in mapping:
        return mapping[e]
    if is_leaf(e):
        return e
    key = id(e)
    if key not in memo:
        args = [substitute(a, mapping, memo) for a in e.args]
        memo[key] = e.func(*args) if any(a is not b for a, b in zip(args, e.args)) else e
    return memo[key]


def prehash(root):
    """Hash every node of root, and its shape, children first, iteratively: SymPy computes both recursively and
    caches them (hash; shape through _shapes), so a deeply nested expression (500 nested functions) is prepared
    here without deep recursion."""
    stack, seen = [(root, False)], set()
    while stack:
        node, expanded = stack.pop()
        if expanded:
            prepared(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if isinstance(a, sp.Basic))
    return root


def prepared(node):
    """node with its hash and shape computed (cached by SymPy and _shapes); O(1) once its children's are."""
    hash(node)
    if isinstance(node, MatrixExpr):
        node.shape  # noqa: B018 (memoised)
    return node


def postorder(root, children):
    """The DAG under root, children before parents, each node once (iterative, for deep expressions)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(children(node)) if k not in seen)
    return order


def replace_nodes(e, rebuild):
    """e with every node for which rebuild(node) is not None replaced by it (children first, each node once)."""
    mapping, memo = {}, {}  # memo shared: a node's replacements all come before it, so what is memoised stays true
    for node in postorder(e, children):
        new = rebuild(substitute(node, mapping, memo) if mapping else node)
        if new is not None:
            mapping[node] = new
    return substitute(e, mapping, memo) if mapping else e


def _factors(t):
    """(coefficient, [matrix factors]) of a term of a sum; a transposed sum (Bᵀ Xᵀ + Cᵀ)ᵀ as the sum X B + C."""
    coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
    return coeff, [matadd(*[tp(u) for u in M.arg.args]) if isinstance(M, sp.Transpose) and isinstance(M.arg, sp.MatAdd)
                   else M for M in mats]


def collect_factors(M):
    """A sum of products with common outer factors written with them once: A (X b + c) bᵀ + B (bᵀ Xᵀ + cᵀ)ᵀ bᵀ =
    (A + B)(X b + c) bᵀ (the transpose of a sum is the sum of the transposes); M itself when nothing is shared."""
    if not isinstance(M, sp.MatAdd):
        return M
    terms = [_factors(t) for t in M.args]
    lists = [mats for _, mats in terms]
    shortest = min(map(len, lists))
    suffix = 0
    while suffix < shortest - 1 and len({tuple(m[len(m) - suffix - 1:]) for m in lists}) == 1:
        suffix += 1
    prefix = 0
    while prefix < shortest - 1 and len({tuple(m[:prefix + 1]) for m in lists}) == 1:
        prefix += 1
    if suffix == 0 and prefix == 0:
        return M
    if suffix >= prefix:
        inner = matadd(*[matmul(c, *m[:len(m) - suffix]) for c, m in terms])
        return matmul(collect_factors(inner), *lists[0][len(lists[0]) - suffix:])
    inner = matadd(*[matmul(c, *m[prefix:]) for c, m in terms])
    return matmul(*lists[0][:prefix], collect_factors(inner))


LEAVES = (*LEAVES, Select, Commutation)
