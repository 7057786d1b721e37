"""Generated functions: the statements of a program printed by the array printer, shared sub-expressions once,
outputs as early as they can be computed, every local freed after its last use; compiled, keyword-called,
or written as a standalone module; and lambdify for single expressions."""
from collections.abc import Callable, Sequence
from typing import Any
import builtins
import itertools
import keyword
import re
from collections import Counter
from dataclasses import dataclass, replace

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixElement

from ..core.expr import children, matmul, postorder, tp
from ..core.functions import body_of, elementwise
from ..core.shapes import conform, memoised
from ..errors import InvalidArgument, InvalidType, ShapeError
from ..printing.arrays import MatrixNumPyPrinter, row_or_column, tiling
from . import helpers

def _fresh_product(e, computed):
    """Whether e prints as a matrix product of arrays, P @ Q @ …, which returns a new array, and reads a computed
    value (floating): a product of arguments alone may be of integers, which += of a float cannot hold."""
    return (isinstance(e, sp.MatMul) and e.args[0] != -1 and len(e.as_coeff_matrices()[1]) > 1
            and not any(isinstance(m, (sp.OneMatrix, sp.Inverse)) for m in e.args)
            and bool(e.free_symbols & computed))


def _in_place(expr, computed):
    """(P, operator, R) for target = P ⊙ R or P + R where P is a product of matrices (a new array): the code
    then writes target = P; target *= R (or +=, -=), with no temporary for the result. None otherwise."""
    if not isinstance(expr, (sp.HadamardProduct, sp.MatAdd)) or (isinstance(expr, sp.MatAdd) and tiling(expr.args)):
        return None   # (the blocks of a matrix are concatenated at once)
    k = next((k for k, a in enumerate(expr.args) if _fresh_product(a, computed)), None)
    if k is None:
        return None
    rest = [a for j, a in enumerate(expr.args) if j != k]
    if isinstance(expr, sp.HadamardProduct):
        return expr.args[k], "*=", rest[0] if len(rest) == 1 else sp.HadamardProduct(*rest)
    if len(rest) > 1:
        return expr.args[k], "+=", sp.MatAdd(*rest)
    term = row_or_column(rest[0]) or rest[0]   # Z += b: the array API broadcasts the column b
    coeff, mats = term.as_coeff_matrices() if isinstance(term, sp.MatMul) else (sp.S.One, [term])
    if coeff.is_Number and coeff < 0:
        return expr.args[k], "-=", matmul(-coeff, *mats)
    return expr.args[k], "+=", term


def _dimensions(args):
    """The symbolic sizes of the arguments' shapes, in order of first appearance; a size that is neither an integer
    nor a symbol (2n) is a ValueError naming the argument, as the generated code could not check it."""
    sizes = []
    for a in args:
        for size in getattr(a, "shape", ()):
            if not (size.is_Integer or isinstance(size, sp.Symbol)):
                raise ShapeError(f"argument {a}: size {size} of shape {a.shape} is neither an integer nor a symbol; "
                                 f"generated code needs sizes it can check against the inputs")
            if isinstance(size, sp.Symbol) and size not in sizes:
                sizes.append(size)
    return sizes


def _nodes(exprs):
    """Every node of exprs, each shared node once."""
    seen, stack = set(), list(exprs)
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        stack.extend(a for a in e.args if isinstance(a, sp.Basic))
    return seen


def _shape_symbols(nodes):
    """The symbols in the shapes of the matrices among nodes."""
    return {s for e in nodes if getattr(e, "is_Matrix", False) for size in e.shape
            for s in getattr(size, "free_symbols", ())}


def _det_scaled(nodes):
    """The matrices M with both det M and M⁻¹ (or of Mᵀ) among nodes: |M| M⁻¹ has a finite limit where M is
    singular, but M⁻¹ alone does not, so the code checks M before inverting it."""
    dets = {n.arg for n in nodes if isinstance(n, sp.Determinant)}
    dets |= {tp(M) for M in dets}
    return {n.arg for n in nodes if isinstance(n, sp.Inverse) and n.arg in dets}


def _rebuild(e, args):
    if isinstance(e, ElementwiseApplyFunction):
        return elementwise(body_of(e.function), args[0])
    return e.func(*args)


def common_subexpressions(expr, fresh=None):
    """([(temporary, definition)], expr'): every sub-expression used more than once computed once; `fresh()` gives
    the temporaries' names (names no symbol of expr has)."""
    if fresh is None:
        fresh = Names(avoid={str(s) for s in expr.free_symbols}).fresh
    order = postorder(expr, children)
    uses = Counter(c for e in order for c in set(children(e)))
    new, temporaries = {}, []
    for e in order:
        kids = children(e)
        rebuilt = e
        if any(new[c] is not c for c in kids):
            args = [new.get(a, a) for a in e.args] if not isinstance(e, ElementwiseApplyFunction) else [new[e.expr]]
            rebuilt = _rebuild(e, args)
        cheap = isinstance(e, (sp.Transpose, MatrixElement)) and isinstance(e.args[0], sp.MatrixSymbol)
        if uses[e] > 1 and kids and not cheap:
            name = fresh("_t")
            t = sp.MatrixSymbol(name, *e.shape) if e.is_Matrix else sp.Symbol(name)
            temporaries.append((t, rebuilt))
            rebuilt = t
        new[e] = rebuilt
    return temporaries, new[expr]


class Names:
    """The identifiers of generated code: each name once, never a keyword, a builtin or a name the code calls
    (xp, namespace, the helpers); internal names are numbered past every name already taken."""

    RESERVED = {"xp", "_dtype", "_device", *dir(builtins)}

    def __init__(self, avoid=()):
        self.taken = self.RESERVED | helpers.NAMES
        self.avoid = set(avoid)  # the names of the symbols: never given to an internal name

    def claim(self, name, prefix="_a"):
        """name itself when it is a free identifier, else name_ when that is, else a fresh name with the prefix."""
        def free(n):
            return n.isidentifier() and not keyword.iskeyword(n) and n not in self.taken and n not in self.avoid - {name}

        # lambda -> lambda_ (a keyword), xp -> xp_ (a name the code uses), else a fresh name
        name = next((n for n in (name, name + "_") if free(n)), None) or self.fresh(prefix)
        self.taken.add(name)
        return name

    def fresh(self, prefix):
        """prefix0, prefix1, …: the first not taken."""
        name = next(f"{prefix}{k}" for k in itertools.count()
                    if f"{prefix}{k}" not in self.taken and f"{prefix}{k}" not in self.avoid)
        self.taken.add(name)
        return name


def _with_deletions(statements, keep):
    """The statements with each local deleted after its last read (peak memory below the hand-written recursion's:
    a δ^(l) lives until δ^(l−1) and ∂L/∂W^(l) are computed); `statements` are [(Statement, [names read per line])]."""
    last, k = {}, 0
    for _, reads in statements:
        for names in reads:
            last.update({name: k for name in names})
            k += 1
    out, total, k = [], k, 0
    for statement, _ in statements:
        lines = []
        for line in statement.lines:
            dead = sorted((name for name, j in last.items() if j == k and name not in keep), key=_natural)
            lines.append(replace(line, frees=tuple(dead) if k < total - 1 else ()))
            k += 1
        out.append(replace(statement, lines=tuple(lines)))
    return out


def _natural(name):
    """Sort key: Z2 before Z10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _pruned(statements, results):
    """The statements the results need, in order: e.g. no A^(L) when the loss is computed from the logits."""
    needed = set().union(*[e.free_symbols for e in results])
    kept = []
    for target, expr in reversed(statements):
        if target in needed:
            kept.append((target, expr))
            needed |= expr.free_symbols
    return kept[::-1]


def _schedule(statements, outputs, assignments):
    """The assignments of the statements, each output's inserted right after the last statement it reads
    (∂L/∂W^(l) right after δ^(l)), so that what it reads can be freed early: the recursion's order."""
    position = {t: k for k, (t, _) in enumerate(statements)}
    after = [max((position[s] for s in e.free_symbols if s in position), default=-1) for _, e, *_ in outputs]
    blocks = [assignments(t, e) for t, e in statements]
    # inserted from the last position back, so the positions of the statements not yet passed stay valid
    for k in sorted(range(len(outputs)), key=lambda k: (after[k], k), reverse=True):
        blocks.insert(after[k] + 1, assignments(*outputs[k]))
    return [a for block in blocks for a in block]


@dataclass(frozen=True)
class Line:
    """One line of generated code: `target op code` (op "=", "*=", "+=" or "-="), then `del` of what is dead."""

    target: str
    op: str
    code: str
    frees: tuple = ()


@dataclass(frozen=True)
class Statement:
    """One value the function computes: the mathematics (symbol := expr; `output` names the result it is) and its
    lines of code."""

    symbol: sp.Basic
    expr: sp.Basic
    lines: tuple
    output: object = None
    comment: str = ""   # why it is computed this way, where that is not obvious (a # line above it)


@dataclass(frozen=True)
class Program:
    """A generated function as data: arguments, the sizes read off their shapes, the statements in order, the
    outputs and the helper functions it calls. Its source, module, listing and typeset algorithm are printed from
    it (`python_source`, `module_source`, `listing`, and derive.document)."""

    name: str
    doc: object                # the docstring, or None
    arguments: tuple           # ((identifier, symbol), ...)
    sizes: tuple               # ((identifier, symbol), ...), read off the arguments' shapes
    check: str                 # the call of check_shapes that binds the sizes and checks every argument
    dtype: bool                # whether the code needs _dtype, the floating type of the inputs
    statements: tuple
    outputs: tuple             # ((key, identifier), ...); a single key None: one value returned
    helpers: tuple             # names of the helpers.HELPERS the code calls

    @property
    def single(self):
        return len(self.outputs) == 1 and self.outputs[0][0] is None


@memoised
def program(args, statements, outputs, name="generated", doc=None, notes=None):
    """The Program of an array-API function of `args` that runs `statements` [(symbol, expr)] in order and returns
    `outputs` (one expression, or a dict name -> expression). Symbolic sizes are read off the inputs' shapes inside
    the function; within each statement, shared sub-expressions are computed once (linear in the DAG; values used
    across statements are what the statements name); every local is freed after its last use. `notes` {output key
    (None for a single output) or statement symbol: text} become comments above the lines that compute them."""
    notes = dict(notes or {})
    args = list(args)
    clash = next((a for k, a in enumerate(args) if str(a) in map(str, args[:k])), None)
    if clash is not None:
        # the function is called with keywords named after the arguments: two of one name cannot both be passed
        twins = [a for a in args if str(a) == str(clash)]
        raise InvalidArgument(f"two arguments are named {clash}: {', '.join(map(repr, twins))}; rename one")
    dims = _dimensions(args)
    single = not isinstance(outputs, dict)
    results = {None: outputs} if single else dict(outputs)
    defined = set(args) | {t for t, _ in statements}
    used = set().union(*[e.free_symbols for _, e in statements], *[e.free_symbols for e in results.values()])
    missing = {s for s in used - defined - set(dims)
               if not any(s in a.free_symbols for a in defined if a.is_Matrix)}
    if missing:
        raise InvalidArgument(f"expression has free symbols that are not arguments: {sorted(map(str, missing))}")
    statements = _pruned(statements, results.values())
    # a scalar argument that sizes a matrix the code builds (1_{n×m} with m an argument) is a size: checked an integer
    nodes = _nodes([*(e for _, e in statements), *results.values()])
    shaped = _shape_symbols(nodes)
    dims += [a for a in args if isinstance(a, sp.Symbol) and a in shaped and a not in dims]
    # every name in the code is claimed once: arguments keep theirs where they can (a matrix `xp`, `_t0` or `n`
    # beside a size n is renamed), then the computed values, the sizes, the outputs; temporaries come after
    names = Names(avoid={str(s) for s in used | defined | set(dims)})
    ident = {a: names.claim(str(a)) for a in args}
    ident.update({t: names.claim(str(t), "_v") for t, _ in statements})
    ident.update({d: names.claim(str(d), "_s") for d in dims if d not in ident})
    user = {str(a) for a in args}
    outs = [ident[e] if e in ident else names.claim(f"d{key}" if key in user else str(key), "_out")
            for key, e in results.items()]
    printer = MatrixNumPyPrinter({"fully_qualified_modules": True, "inline": True, "allow_unknown_functions": False})
    printer.renames = {s: nm for s, nm in ident.items() if nm != str(s)}
    printer.guarded = _det_scaled(nodes)
    computed = {t for t, _ in statements}

    def reads(e):
        return {ident.get(s, str(s)) for s in e.free_symbols}

    def assignments(target, expr, output=None, is_output=False):
        """[(Statement, [names read per line])] for `target = expr`, shared sub-expressions first."""
        symbol, target = target, ident.get(target, target)
        temporaries, result = common_subexpressions(expr, names.fresh)
        printer.temporaries.update(temporaries)
        out = [(Statement(t, e, (Line(str(t), "=", printer.doprint(e)),)), [reads(e)]) for t, e in temporaries]
        split = _in_place(result, computed)
        comment = notes.get(output if is_output else symbol, "")
        if split:
            product, operator, rest = split
            lines = (Line(target, "=", printer.doprint(product)), Line(target, operator, printer.doprint(rest)))
            return out + [(Statement(symbol, result, lines, output, comment), [reads(product), reads(rest)])]
        return out + [(Statement(symbol, result, (Line(target, "=", printer.doprint(result)),), output, comment),
                       [reads(result)])]

    computed_outputs = [(out, e, key, True) for out, (key, e) in zip(outs, results.items()) if e not in ident]
    body = _with_deletions(_schedule(statements, computed_outputs, assignments),
                           keep={*(ident[a] for a in args), *outs, *(ident[d] for d in dims)})
    return Program(name, doc, tuple((ident[a], a) for a in args), tuple((ident[d], d) for d in dims),
                   _checks(args, dims, ident), "_dtype" in printer.helpers, tuple(body),
                   tuple(zip(results, outs)),
                   tuple(sorted(printer.helpers - {"_dtype"} | ({"_indices"} if any(hasattr(a, "vocabulary_axis")
                                                                                   for a in args) else set()))))


def listing(program):
    """The Python source of the program's function alone (no helpers)."""
    lines = [f"def {program.name}({', '.join(i for i, _ in program.arguments)}):"]
    if program.doc and "\n" not in program.doc:
        lines.append(f'    """{program.doc}"""')
    elif program.doc:
        lines.append('    """' + program.doc.replace("\n", "\n    ") + '\n    """')
    arrays = [i for i, a in program.arguments if a.is_Matrix]
    lines.append(f"    xp = namespace({', '.join(arrays)})" if arrays else "    import numpy as xp")
    lines.append(f"    {program.check}")
    if program.dtype:
        # the floating type of the inputs (float32 stays float32) and their device: constants are made alike
        lines.append(f"    _dtype = xp.result_type({', '.join(arrays)}, xp.float32)" if arrays else "    _dtype = xp.float64")
        lines.append(f"    _device = device_of({arrays[0]})" if arrays else "    _device = None")
    code = [(line, s.comment if line is s.lines[0] else "") for s in program.statements for line in s.lines]
    out = program.outputs[0][1] if program.single else None
    for k, (line, comment) in enumerate(code):
        last = k == len(code) - 1
        if comment:
            lines.append(f"    # {comment}")
        if program.single and last and line.target == out and line.op == "=":
            lines.append(f"    return {line.code}")   # one result: returned as computed
            return "\n".join(lines) + "\n"
        lines.append(f"    {line.target} {line.op} {line.code}")
        if line.frees:
            lines.append(f"    del {', '.join(line.frees)}")
    if program.single:
        lines.append(f"    return {out}")
    else:
        lines.append("    return {" + ", ".join(f"{key!r}: {out}" for key, out in program.outputs) + "}")
    return "\n".join(lines) + "\n"


def _blocks(programs):
    """The source blocks of the programs: the namespace and shape-check helpers, then per program the helpers not
    written yet and its function."""
    blocks, written = [helpers.source(helpers.namespace, helpers.device_of), helpers.source(*helpers.CHECKS)], set()
    for p in programs:
        blocks += [helpers.source(helpers.HELPERS[h]) for h in p.helpers if h not in written]
        written.update(p.helpers)
        blocks.append(listing(p))
    return blocks


def python_source(program):
    """The standalone Python source of the program: its helpers, then its function."""
    return "\n\n".join(_blocks([program]))


def module_source(head, programs):
    """A standalone module: the docstring `head`, then the programs' functions, each helper once."""
    return "\n\n".join([f'"""{head}\n"""\n', *(b.strip("\n") + "\n" for b in _blocks(programs))])


def function_source(args, statements, outputs, name="generated", doc=None):
    """The Python source of the function `program(...)` describes."""
    return python_source(program(args, statements, outputs, name, doc))


def _checks(args, dims, ident):
    """The line that checks every argument against its derived shape, binds the symbolic sizes consistently (a size
    that is an argument too is checked against the shapes) and makes integer arrays floating."""
    bound = [d for d in dims if d not in args]
    # a one-hot input's entry names its vocabulary axis: it is given as indices (or one-hot)
    expected = _tuple(_tuple([repr(str(a)), _shape_spec(a, ident), *([str(a.vocabulary_axis)] if hasattr(
        a, "vocabulary_axis") else [])]) for a in args)
    given = _tuple(_tuple([repr(ident[d]), _tuple([ident[d], repr(f"the argument {d}")])]) for d in dims if d in args)
    call = (f"check_shapes(xp, {_tuple(ident[a] for a in args)}, {expected}, {_tuple(repr(ident[d]) for d in bound)}"
            f"{', ' + given if given != '()' else ''})")
    return f"{_tuple(ident[d] for d in bound)}, {_tuple(ident[a] for a in args)} = {call}"


def _shape_spec(a, ident):
    """An argument's expected shape in the code: a tuple of integers and names of sizes, () for a scalar."""
    return _tuple(str(int(n)) if n.is_Integer else repr(ident[n]) for n in getattr(a, "shape", ()))


def _tuple(items):
    """Python source of a tuple: (), (a,), (a, b)."""
    items = list(items)
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def compile_function(args, statements, outputs, name="generated", doc=None):
    """The function of `program(...)`, compiled; its code is in `.source`."""
    return compiled(program(args, statements, outputs, name, doc))


def compiled(program):
    """The program's function, compiled (positional arguments); its code is in `.source`."""
    args, name = [a for _, a in program.arguments], program.name
    source = python_source(program)
    namespace = {}
    exec(compile(source, f"<derive.{name}>", "exec"), namespace)
    inner = namespace[name]

    def f(*values):
        if len(values) != len(args):
            raise InvalidType(f"expected {len(args)} arguments ({', '.join(map(str, args))}), got {len(values)}")
        return inner(*values)

    f.source = source
    return f


def keyword_function(program):
    """The program's function compiled, called with keyword arguments named after its arguments' symbols; a missing
    or unexpected name is an InvalidType that lists them. Its code is in `.source`."""
    inner = compiled(program)
    name, doc, names = program.name, program.doc, [str(a) for _, a in program.arguments]

    def function(**values):
        missing, extra = set(names) - set(values), set(values) - set(names)
        if missing or extra:
            raise InvalidType(f"{name}() takes keyword arguments {', '.join(names)}; "
                            f"missing {sorted(missing)}, unexpected {sorted(extra)}")
        return inner(*[values[k] for k in names])

    function.__doc__, function.__name__, function.source = doc, name, inner.source
    return function


def lambdify(args: Sequence[sp.Basic], expr: sp.Basic) -> Callable[..., Any]:
    """A NumPy function of `args` computing `expr`, like sympy.lambdify; symbolic sizes are read off the inputs.

    Shared sub-expressions are computed once (the code is linear in the expression's DAG, not its tree).
    """
    args = list(args) if isinstance(args, (list, tuple)) else [args]
    f = compile_function(args, [], conform(expr) if isinstance(expr, sp.Basic) else expr)
    f.__doc__ = f"Generated by derive.lambdify from ({', '.join(map(str, args))}); its code is in .source."
    return f
