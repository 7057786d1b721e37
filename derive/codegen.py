"""Array code for the engine's expressions: a NumPyPrinter subclass that writes to the array API standard
(`xp`, the namespace of the inputs: NumPy, array_api_strict, Dask, CuPy, PyTorch, JAX), and lambdify."""
import itertools
import keyword
import re
from collections import Counter

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from .expr import LEAVES, matmul, postorder, substitute
from .functions import ELT, body_of, elementwise
from .printing import SafePrecedence, positive_first

# Helper functions the generated code may call, defined in its own source (no import of derive needed).
NAMESPACE = '''def namespace(*arrays):
    """The array library of the inputs, as an array API namespace (array_api_compat when installed)."""
    try:
        from array_api_compat import array_namespace
    except ImportError:
        return arrays[0].__array_namespace__()
    # arrays of one type are of one library: one look-up (1 µs) instead of one per array (30 µs for 34)
    return array_namespace(*(arrays[:1] if len({type(a) for a in arrays}) == 1 else arrays))
'''

HELPERS = {
    "sigmoid": '''def sigmoid(xp, x):
    """1 / (1 + e^(−x)) = e^(min(x, 0)) / (1 + e^(−|x|)): no overflow, full relative precision for every x
    (the tanh form (1 + tanh(x/2)) / 2 loses it below x ≈ −20)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1 + e)
''',
    "softmax": '''def softmax(xp, z, axis):
    """exp(z) normalised along axis; the maximum is subtracted first, so exp never overflows."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)
''',
    "log_softmax": '''def log_softmax(xp, z, axis):
    """log softmax(z) along axis = z − max − log Σ exp(z − max), without overflow."""
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
''',
}


class MatrixNumPyPrinter(SafePrecedence, NumPyPrinter):
    """Prints matrix products as @, ⊙ as *, and every elementwise function on whole arrays."""

    def __init__(self, settings=None):
        super().__init__(settings)
        self.helpers = set()  # names from HELPERS the printed code calls

    def _module_format(self, fqn, register=True):
        # every numpy.<name> is written xp.<name>: the namespace of the inputs
        if fqn.startswith("numpy."):
            return "xp." + {"numpy.trace": "linalg.trace"}.get(fqn, fqn[len("numpy."):])
        return super()._module_format(fqn, register)

    def _product(self, mats):
        """M1 @ M2 @ …, with each all-ones factor turned into a sum: 1ᵀM = Σ over rows, M 1 = Σ over columns."""
        if len(mats) > 1 and isinstance(mats[0], sp.OneMatrix):
            # 1_{p×q} M = broadcast of the column sums of M
            rest = self._product(mats[1:])
            total = rest if mats[0].cols == 1 else f"{self._module_format('numpy.sum')}({rest}, axis=0, keepdims=True)"
            return total if mats[0].rows == 1 else self._broadcast(total, mats[0].rows, mats[-1].cols)
        if len(mats) > 1 and isinstance(mats[-1], sp.OneMatrix):
            # M 1_{q×r} = broadcast of the row sums of M
            rest = self._product(mats[:-1])
            total = rest if mats[-1].rows == 1 else f"{self._module_format('numpy.sum')}({rest}, axis=1, keepdims=True)"
            return total if mats[-1].cols == 1 else self._broadcast(total, mats[0].rows, mats[-1].cols)
        k = next((i for i, m in enumerate(mats[:-1]) if isinstance(m, sp.Inverse)), None)
        if k is not None:
            # M⁻¹ B = solve(M, B): no inverse formed
            solved = f"xp.linalg.solve({self._print(mats[k].arg)}, {self._product(mats[k + 1:])})"
            return " @ ".join([*(self.parenthesize(m, PRECEDENCE["Mul"], strict=False) for m in mats[:k]), solved])
        if len(mats) > 1 and isinstance(mats[-1], sp.Inverse):
            # P M⁻¹ = (M⁻ᵀ Pᵀ)ᵀ = solve(Mᵀ, Pᵀ)ᵀ: no inverse formed
            transposed = matmul(*[m.T for m in reversed(mats[:-1])])
            return f"xp.linalg.solve({self._print(mats[-1].arg.T)}, {self._print(transposed)}).T"
        return " @ ".join(self.parenthesize(m, PRECEDENCE["Mul"], strict=False) for m in mats)

    def _print_log(self, expr):
        if isinstance(expr.args[0], sp.Determinant):
            # log|X| from slogdet: no overflow of det for large matrices
            return f"xp.linalg.slogdet({self._print(expr.args[0].arg)})[1]"
        return f"xp.log({self._print(expr.args[0])})"

    def _broadcast(self, array, rows, cols):
        return f"{self._module_format('numpy.broadcast_to')}({array}, ({self._print(rows)}, {self._print(cols)}))"

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_matrices()
        product = self._product(mats)
        if len(mats) > 1 and any(isinstance(m, sp.OneMatrix) for m in (mats[0], mats[-1])):
            product = f"({product})" if " @ " in product else product
        if coeff == 1:
            return product
        if coeff == -1:
            return f"-{product if ' @ ' not in product else '(' + product + ')'}"
        return f"{self.parenthesize(coeff, PRECEDENCE['Mul'])} * {f'({product})' if ' @ ' in product else product}"

    def _print_MatAdd(self, expr):
        out = []
        full = any(_row_or_column(t) is None for t in expr.args)
        for t in positive_first(expr.args):
            if full and _row_or_column(t) is not None:
                # b 1ᵀ + M = b + M: the array API broadcasts a row or column against the full terms
                t = _row_or_column(t)
            coeff, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
            if out and coeff.is_Number and coeff < 0:
                out.append(f"- {self.parenthesize(matmul(-coeff, *mats), PRECEDENCE['Add'], strict=True)}")
            elif isinstance(t, sp.OneMatrix) and len(expr.args) > 1:
                out.append(("+ " if out else "") + "1")  # broadcast against the other terms
            else:
                out.append(("+ " if out else "") + self.parenthesize(t, PRECEDENCE["Add"], strict=True))
        return " ".join(out)

    def _print_Pow(self, expr, rational=False):
        # 1/m for a size or scalar symbol (NumPyPrinter would write m**(-1.0))
        if expr.exp == -1 and expr.base.is_Symbol:
            return f"(1 / {self._print(expr.base)})"
        return super()._print_Pow(expr, rational)

    def _print_HadamardProduct(self, expr):
        return " * ".join(self.parenthesize(a, PRECEDENCE["Mul"], strict=False) for a in expr.args)

    def _print_HadamardPower(self, expr):
        return f"{self.parenthesize(expr.base, PRECEDENCE['Pow'], strict=False)} ** {self._print(expr.exp)}"

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Atom'], strict=True)}.T"

    def _print_Inverse(self, expr):
        return f"{self._module_format('numpy.linalg.inv')}({self._print(expr.arg)})"

    def _print_Determinant(self, expr):
        return f"{self._module_format('numpy.linalg.det')}({self._print(expr.arg)})"

    def _print_Trace(self, expr):
        arg = expr.arg
        if isinstance(arg, sp.MatAdd):
            # tr(A + B) = tr A + tr B
            return "(" + " + ".join(self._print(sp.Trace(t)) for t in arg.args) + ")"
        if isinstance(arg, sp.MatMul):
            coeff, mats = arg.as_coeff_matrices()
            if len(mats) == 2 and not any(isinstance(m, sp.OneMatrix) for m in mats):
                # tr(Pᵀ Q) = Σ_ij P_ij Q_ij, without forming the product
                P, Q = mats
                P = P.arg if isinstance(P, sp.Transpose) else sp.Transpose(P)
                total = (f"xp.sum({self.parenthesize(P, PRECEDENCE['Mul'])} * "
                         f"{self.parenthesize(Q, PRECEDENCE['Mul'])})")
                return total if coeff == 1 else f"{self.parenthesize(coeff, PRECEDENCE['Mul'])} * {total}"
        return f"{self._module_format('numpy.trace')}({self._print(arg)})"

    # constant matrices take the floating type of the inputs (_dtype), so float32 stays float32
    def _print_Identity(self, expr):
        self.helpers.add("_dtype")
        return f"{self._module_format('numpy.eye')}({self._print(expr.rows)}, dtype=_dtype)"

    def _print_OneMatrix(self, expr):
        self.helpers.add("_dtype")
        return f"{self._module_format('numpy.ones')}(({self._print(expr.rows)}, {self._print(expr.cols)}), dtype=_dtype)"

    def _print_ZeroMatrix(self, expr):
        self.helpers.add("_dtype")
        return f"{self._module_format('numpy.zeros')}(({self._print(expr.rows)}, {self._print(expr.cols)}), dtype=_dtype)"

    def _print_ElementwiseApplyFunction(self, expr):
        inner = self._print(expr.expr)
        arg = sp.Symbol(inner if isinstance(expr.expr, sp.MatrixSymbol) else f"({inner})")
        return self._print(body_of(expr.function).xreplace({ELT: arg}))

    def _print_sigmoid(self, expr):
        self.helpers.add("sigmoid")
        return f"sigmoid(xp, {self._print(expr.args[0])})"

    def _print_softplus(self, expr):
        # log(1 + e^x) = max(x, 0) + log1p(e^{−|x|}): no overflow
        x = self._print(expr.args[0])
        return f"(xp.maximum({x}, 0.0) + xp.log1p(xp.exp(-xp.abs({x}))))"

    def _print_Softmax(self, expr):
        self.helpers.add("softmax")
        return f"softmax(xp, {self._print(expr.arg)}, {expr.axis})"

    def _print_LogSoftmax(self, expr):
        self.helpers.add("log_softmax")
        return f"log_softmax(xp, {self._print(expr.arg)}, {expr.axis})"

    def _print_leaky_relu(self, expr):
        x, alpha = (self._print(a) for a in expr.args)
        if expr.args[1].is_number and 0 <= expr.args[1] <= 1:
            # max(x, αx) for 0 ≤ α ≤ 1: one pass, 16x faster than where on 256² arrays
            return f"xp.maximum({x}, {alpha} * {x})"
        return f"xp.where({x} > 0, {x}, {alpha} * {x})"

    def _print_relu(self, expr):
        return f"xp.maximum({self._print(expr.args[0])}, 0.0)"

    def _print_Heaviside(self, expr):
        # the step as 0/1 in the dtype of x (the value at 0 is 0, as relu' = H(x, 0))
        x = self._print(expr.args[0])
        return f"xp.astype({x} > 0, {x}.dtype)"


def _row_or_column(term):
    """b for a term b 1ᵀ (column b repeated) or 1 bᵀ (row bᵀ repeated); None for any other term."""
    if not isinstance(term, sp.MatMul):
        return None
    coeff, mats = term.as_coeff_matrices()
    if len(mats) > 1 and isinstance(mats[-1], sp.OneMatrix) and mats[-1].rows == 1:
        return matmul(coeff, *mats[:-1])
    if len(mats) > 1 and isinstance(mats[0], sp.OneMatrix) and mats[0].cols == 1:
        return matmul(coeff, *mats[1:])
    return None


def _fresh_product(e, computed):
    """Whether e prints as a matrix product of arrays, P @ Q @ …, which returns a new array, and reads a computed
    value (floating): a product of arguments alone may be of integers, which += of a float cannot hold."""
    return (isinstance(e, sp.MatMul) and e.args[0] != -1 and len(e.as_coeff_matrices()[1]) > 1
            and not any(isinstance(m, (sp.OneMatrix, sp.Inverse)) for m in e.args)
            and bool(e.free_symbols & computed))


def _in_place(expr, computed):
    """(P, operator, R) for target = P ⊙ R or P + R where P is a product of matrices (a new array): the code
    then writes target = P; target *= R (or +=, -=), with no temporary for the result. None otherwise."""
    if not isinstance(expr, (sp.HadamardProduct, sp.MatAdd)):
        return None
    k = next((k for k, a in enumerate(expr.args) if _fresh_product(a, computed)), None)
    if k is None:
        return None
    rest = [a for j, a in enumerate(expr.args) if j != k]
    if isinstance(expr, sp.HadamardProduct):
        return expr.args[k], "*=", rest[0] if len(rest) == 1 else sp.HadamardProduct(*rest)
    if len(rest) > 1:
        return expr.args[k], "+=", sp.MatAdd(*rest)
    term = _row_or_column(rest[0]) or rest[0]   # Z += b: the array API broadcasts the column b
    coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
    if coeff.is_Number and coeff < 0:
        return expr.args[k], "-=", matmul(-coeff, *mats)
    return expr.args[k], "+=", term


def _dimensions(args):
    """{dimension symbol: (argument index, axis)} for the symbolic sizes of the arguments."""
    where = {}
    for k, a in enumerate(args):
        for axis, size in enumerate(getattr(a, "shape", ())):
            if isinstance(size, sp.Symbol):
                where.setdefault(size, (k, axis))
    return where


def _children(e):
    if isinstance(e, LEAVES):
        return ()
    if isinstance(e, ElementwiseApplyFunction):
        return (e.expr,)
    return e.args


def _rebuild(e, args):
    if isinstance(e, ElementwiseApplyFunction):
        return elementwise(body_of(e.function), args[0])
    return e.func(*args)


def common_subexpressions(expr, counter=None):
    """([(temporary, definition)], expr'): every sub-expression used more than once computed once."""
    counter = itertools.count() if counter is None else counter
    order = postorder(expr, _children)
    uses = Counter(c for e in order for c in set(_children(e)))
    new, temporaries = {}, []
    for e in order:
        kids = _children(e)
        rebuilt = e
        if any(new[c] is not c for c in kids):
            args = [new.get(a, a) for a in e.args] if not isinstance(e, ElementwiseApplyFunction) else [new[e.expr]]
            rebuilt = _rebuild(e, args)
        cheap = isinstance(e, (sp.Transpose, MatrixElement)) and isinstance(e.args[0], sp.MatrixSymbol)
        if uses[e] > 1 and kids and not cheap:
            k = next(counter)
            t = sp.MatrixSymbol(f"_t{k}", *e.shape) if e.is_Matrix else sp.Symbol(f"_t{k}")
            temporaries.append((t, rebuilt))
            rebuilt = t
        new[e] = rebuilt
    return temporaries, new[expr]


def _identifier(name, k):
    """A Python name for argument k: its own name, `lambda_` for a keyword, `_a<k>` otherwise."""
    if keyword.iskeyword(name):
        return name + "_"
    return name if name.isidentifier() else f"_a{k}"


def _with_deletions(assignments, keep):
    """Source lines for [(statement, names read)], each local deleted after its last read (peak memory below
    the hand-written recursion's: a δ^(l) lives until δ^(l−1) and ∂L/∂W^(l) are computed)."""
    last = {}
    for k, (_, reads) in enumerate(assignments):
        last.update({name: k for name in reads})
    lines = []
    for k, (code, _) in enumerate(assignments):
        lines.append(f"    {code}")
        dead = sorted((name for name, j in last.items() if j == k and name not in keep), key=_natural)
        if dead and k < len(assignments) - 1:
            lines.append(f"    del {', '.join(dead)}")
    return lines


def _natural(name):
    """Sort key: Z2 before Z10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def function_source(args, statements, outputs, name="generated", doc=None):
    """The Python source of an array-API function of `args` that runs `statements` [(symbol, expr)] in order
    and returns `outputs` (one expression, or a dict name -> expression). Symbolic sizes are read off the
    inputs' shapes inside the function; shared sub-expressions are computed once (linear in the DAG)."""
    args = list(args)
    dims = _dimensions(args)
    single = not isinstance(outputs, dict)
    results = {None: outputs} if single else dict(outputs)
    defined = set(args) | {t for t, _ in statements}
    used = set().union(*[e.free_symbols for _, e in statements], *[e.free_symbols for e in results.values()])
    missing = {s for s in used - defined - set(dims)
               if not any(s in a.free_symbols for a in defined if a.is_Matrix)}
    if missing:
        raise ValueError(f"expression has free symbols that are not arguments: {sorted(map(str, missing))}")
    names = {a: _identifier(str(a), k) for k, a in enumerate(args)}
    renamed = {a: (sp.MatrixSymbol(nm, *a.shape) if a.is_Matrix else sp.Symbol(nm))
               for a, nm in names.items() if nm != str(a)}
    printer = MatrixNumPyPrinter({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
    counter = itertools.count()
    computed = {t for t, _ in statements}

    def assignments(target, expr):
        """[(statement, names read)] for `target = expr`, shared sub-expressions first."""
        expr = substitute(expr, renamed) if renamed else expr
        temporaries, result = common_subexpressions(expr, counter)
        lines = [(f"{t} = {printer.doprint(e)}", {str(s) for s in e.free_symbols}) for t, e in temporaries]
        split = _in_place(result, computed)
        if split:
            product, operator, rest = split
            return lines + [(f"{target} = {printer.doprint(product)}", {str(s) for s in product.free_symbols}),
                            (f"{target} {operator} {printer.doprint(rest)}", {str(s) for s in rest.free_symbols})]
        return lines + [(f"{target} = {printer.doprint(result)}", {str(s) for s in result.free_symbols})]

    needed = set().union(*[e.free_symbols for e in results.values()])
    kept = []
    for target, expr in reversed(statements):
        # only what the outputs need, e.g. no A^(L) when the loss is computed from the logits
        if target in needed:
            kept.append((target, expr))
            needed |= expr.free_symbols
    statements = kept[::-1]
    used_names = {str(a) for a in args} | {str(t) for t, _ in statements}
    existing = {**{a: names[a] for a in args}, **{t: str(t) for t, _ in statements}}

    def out_name(k, key, expr):
        """The variable returned for results[key]: a computed value under its own name (Z1), ∂L/∂P as dP,
        any other key under its own name (loss), _out<k> where that is taken or not an identifier."""
        if expr in existing:
            return existing[expr]
        name = (f"d{key}" if key in used_names else key) if isinstance(key, str) else None
        ok = name and name.isidentifier() and not keyword.iskeyword(name) and name not in used_names
        return name if ok else f"_out{k}"

    outs = [out_name(k, key, expr) for k, (key, expr) in enumerate(results.items())]
    # each output right after the last statement it reads (∂L/∂W^(l) right after δ^(l)), so that what it
    # reads can be freed early: the order of the closed-form recursion
    position = {t: k for k, (t, _) in enumerate(statements)}
    after = [max((position[s] for s in e.free_symbols if s in position), default=-1) for e in results.values()]
    blocks = [assignments(t, e) for t, e in statements]
    # inserted from the last position back, so the positions of the statements not yet passed stay valid
    for k in sorted(range(len(outs)), key=lambda k: (after[k], k), reverse=True):
        if list(results.values())[k] not in existing:
            blocks.insert(after[k] + 1, assignments(outs[k], list(results.values())[k]))
    lines = _with_deletions([a for block in blocks for a in block], keep={*names.values(), *outs, *map(str, dims)})
    if single:
        lines.append(f"    return {outs[0]}")
    else:
        lines.append("    return {" + ", ".join(f"{key!r}: {out}" for key, out in zip(results, outs)) + "}")
    arrays = [names[a] for a in args if a.is_Matrix]
    head = [f"    xp = namespace({', '.join(arrays)})"]
    read = set(re.findall(r"\w+", "\n".join(lines)))
    head += [f"    {dim} = {names[args[k]]}.shape[{axis}]" for dim, (k, axis) in sorted(dims.items(), key=str)
             if str(dim) in read]
    if "_dtype" in printer.helpers:
        # the floating type of the inputs: float32 stays float32, integers become float64
        head.append(f"    _dtype = xp.result_type({', '.join(arrays)}, xp.float32)")
    if doc:
        head.insert(0, '    """' + doc.replace("\n", "\n    ") + '\n    """')
    helpers = [HELPERS[h] for h in sorted(printer.helpers - {"_dtype"})]
    header = f"def {name}({', '.join(names.values())}):"
    return "\n\n".join([NAMESPACE, *helpers, "\n".join([header, *head, *lines]) + "\n"])


def compile_function(args, statements, outputs, name="generated", doc=None):
    """The function of `function_source`, compiled; its code is in `.source`."""
    args = list(args)
    source = function_source(args, statements, outputs, name, doc)
    namespace = {}
    exec(compile(source, f"<derive.{name}>", "exec"), namespace)
    inner = namespace[name]

    def f(*values):
        if len(values) != len(args):
            raise TypeError(f"expected {len(args)} arguments ({', '.join(map(str, args))}), got {len(values)}")
        return inner(*values)

    f.source = source
    return f


def keyword_function(args, statements, outputs, name, doc):
    """The compiled function of `function_source`, called with keyword arguments named after `args`; a missing or
    unexpected name is a TypeError that lists them. Its code is in `.source`."""
    inner = compile_function(args, statements, outputs, name=name, doc=doc)
    names = [str(a) for a in args]

    def function(**values):
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise TypeError(f"{name}() takes keyword arguments {', '.join(names)}; "
                            f"missing {sorted(missing)}, unexpected {sorted(extra)}")
        return inner(*[values[k] for k in names])

    function.__doc__, function.__name__, function.source = doc, name, inner.source
    return function


def module_source(head, sources):
    """A standalone module: the docstring `head`, then the functions of `sources`, each helper once."""
    blocks = []
    for source in sources:
        for block in source.split("\n\n\n"):
            block = block.strip("\n") + "\n"
            if block not in blocks:
                blocks.append(block)
    return "\n\n\n".join([f'"""{head}\n"""', *blocks])


def lambdify(args, expr):
    """A NumPy function of `args` computing `expr`, like sympy.lambdify; symbolic sizes are read off the inputs.

    Shared sub-expressions are computed once (the code is linear in the expression's DAG, not its tree).
    """
    args = list(args) if isinstance(args, (list, tuple)) else [args]
    f = compile_function(args, [], expr)
    f.__doc__ = f"Generated by derive.lambdify from ({', '.join(map(str, args))}); its code is in .source."
    return f
