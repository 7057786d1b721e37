"""Reverse-mode matrix differentials: df = Σ tr(G_Nᵀ dN) pushed from f down to the variables."""
from collections import defaultdict
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr

from ..core.expr import (LEAVES, Differential, LogDet, ScalarDifferential, children, collect_factors, d, is_leaf,
                         matadd, matmul, postorder, prehash, prepared, tp)
from ..core.functions import apply
from ..core.hadamard import simplify
from ..core.rules import DEFINITION, IDENTITIES, Rule, cite, operator, transpose
from ..core.shapes import conform_node, memoised
from ..errors import InvalidArgument, InvalidType, ShapeError, UnsupportedOperation


@dataclass(frozen=True)
class Step:
    """One rule application: `before` rewritten into `after` by `rule`, while the adjoint of `node` is pushed down
    (None for the steps that read results off); `term` is which term of d node it rewrites (0, 1, … in the order
    of its differential's terms; None for a step on the whole)."""

    rule: Rule
    before: sp.Basic
    after: sp.Basic
    node: object = None
    term: object = None


def form(G, D):
    """The differential term with adjoint G on D: tr(Gᵀ D) for a matrix, G·D for a scalar."""
    return sp.Trace(matmul(tp(G), D)) if D.is_Matrix else G * D


def normalise(expr, memo=None):
    """expr with every elementwise function in canonical form (so equal sub-expressions are equal); iterative, for
    deeply nested expressions."""
    memo = {} if memo is None else memo
    for node in postorder(prehash(expr), lambda n: () if n in memo else _normal_children(n)):
        if node not in memo:
            # hash and shape now (its children's are known), once its operands are checked to conform
            memo[node] = prepared(_normal_node(conform_node(node), memo))
    return memo[expr]


def _normal_children(expr):
    return () if isinstance(expr, sp.Sum) else children(expr)   # a Sum is read back whole


def _normal_node(expr, memo):
    """One node of normalise, its children already in memo."""
    if isinstance(expr, ElementwiseApplyFunction):
        return apply(expr.function, memo[expr.expr])
    if isinstance(expr, sp.log) and isinstance(memo[expr.args[0]], sp.Determinant):
        return LogDet(memo[expr.args[0]].arg)   # log |X| as one node, with its own rule
    if isinstance(expr, sp.Sum) and expr.has(MatrixElement):
        # Σ_i a_i x_i, as SymPy writes (aᵀx)[0, 0] for a symbolic size, is read back as (aᵀx)[0, 0]
        try:
            matrix_form = MatrixExpr.from_index_summation(expr)
        except Exception:  # SymPy raises many kinds here (IndexError, ValueError, AttributeError, …)
            matrix_form = None
        if matrix_form is None or matrix_form.has(sp.Sum):
            raise UnsupportedOperation("Sum", expr, "it is not a sum that a matrix product writes (Σ_i a_i x_i); "
                                       "write it with matrix operations (tr, products, ⊙)")
        return normalise(matrix_form, memo)
    kids = _normal_children(expr)
    if not kids:
        return expr
    args = [memo[a] for a in expr.args]
    if args == list(expr.args):
        return expr
    try:
        return expr.func(*args)
    except (TypeError, AttributeError, ValueError) as e:  # SymPy cannot build it (Max of a matrix scalar, …)
        raise UnsupportedOperation(type(expr).__name__, expr, f"SymPy cannot rebuild it ({e})") from e


def prepare(f, definitions=None):
    """(f, {Z: E}) checked and in canonical form: f a scalar or 1×1 expression whose operations conform, every
    definition a name of E's shape, in an order that computes them."""
    memo = {}
    definitions = {Z: _normal(E, memo, f"definition of {Z}") for Z, E in _definitions(definitions).items()}
    for Z, E in definitions.items():
        if E.is_Matrix != Z.is_Matrix or (Z.is_Matrix and Z.shape != E.shape):
            raise ShapeError(f"definition of {Z}: shape {_shape(Z)} does not match shape {_shape(E)} of {E}")
    f_normal = _normal(_expression(f, "f"), memo, "f")
    if f_normal.is_Matrix and f_normal.shape != (1, 1):
        raise ShapeError(f"f must be a scalar or a 1×1 matrix, got shape {f_normal.shape}: {f}")
    return f_normal, definitions


def _normal(e, memo, what):
    """normalise(e), a ShapeError in it prefixed with what e is."""
    try:
        return normalise(e, memo)
    except ShapeError as error:
        raise ShapeError(f"{what}: {error}") from None


@memoised
def backward(f, wrt, definitions=None, names=None):
    """({node: ∂f/∂node}, steps): one reverse sweep over the DAG of f, from df = tr(1 · d f) down to the variables
    `wrt`, every rule applied recorded as a Step. `definitions` {Z: E} names intermediates; `names` {Z: δ} makes
    each Z pass its adjoint on as the symbol δ once it is known (δ^(l) of a network)."""
    f, definitions = prepare(f, definitions)
    wrt, names = tuple(wrt), dict(names or {})
    # E written as Z where it reappears in an adjoint; a name for a bare symbol (Z := X) renames, it does not simplify
    rewrite = {E: Z for Z, E in definitions.items() if not is_leaf(E)}
    order, dep = _order(f, wrt, definitions)
    steps, adjoints, pending = [], {}, defaultdict(list)
    pending[f].append(sp.Identity(1) if f.is_Matrix else sp.S.One)
    for node in reversed(order):
        if not dep[node] or node not in pending:
            continue
        G, done = _collect(node, pending.pop(node), rewrite)
        steps += done
        adjoints[node] = G
        if node in names:
            # δ := ∂f/∂Z, so that what comes before Z is written in terms of δ
            steps.append(Step(IDENTITIES["name"], form(G, d(node)), form(names[node], d(node)), node))
            G = names[node]
        if node in wrt and node not in definitions:
            continue
        rule, dN = _differential(node, definitions, dep)
        steps.append(Step(rule, form(G, d(node)), form(G, dN), node))
        pairs, done = pullback(G, dN, rewrite, node)
        steps += done
        for child, Gc in pairs:
            pending[child].append(Gc)
    # df = tr(Gᵀ dX) ⇒ ∂f/∂X = G: the step's node is X
    steps += [Step(IDENTITIES["read off"], form(adjoints[X], d(X)), adjoints[X], X) for X in wrt if X in adjoints]
    return adjoints, steps


def _children(node, definitions):
    if node in definitions:
        return (definitions[node],)
    entry = operator(node)
    return entry.differential.children(node) if entry else ()


def _order(f, wrt, definitions):
    """The nodes of f children-first, and which depend on a variable; see refuse_fixed."""
    tainted = tainted_names(wrt, definitions)
    order, dep = postorder(f, lambda n: _children(n, definitions)), {}
    for node in order:
        kids = _children(node, definitions)
        dep[node] = node in wrt or any(dep[k] for k in kids)
        if node not in definitions:
            refuse_fixed(node, kids, tainted)
    return order, dep


def tainted_names(variables, definitions):
    """The variables and the names defined from them (definitions in an order that computes them)."""
    tainted = set(variables)
    for Z, E in definitions.items():
        if E.has(*tainted):
            tainted.add(Z)
    return tainted


def refuse_fixed(node, kids, tainted):
    """An UnsupportedOperation where node holds a variable (or a name defined from one) outside the children its
    rule differentiates — an operator without a rule, the body of an elementwise function —: never a silent 0."""
    if isinstance(node, LEAVES):
        return
    if not kids and node.has(*tainted):
        raise UnsupportedOperation(type(node).__name__, node)
    # an argument that holds a variable but is no child (nor inside one: c in the coefficient −c of c X); the
    # subtree searches run only for such an argument, which is rare and small
    # (a scalar argument of a matrix product is a factor of its coefficient, which is a child: −1 · s/2 · M)
    fixed = [a for a in node.args if a not in kids and a.has(*tainted) and not any(k.has(a) for k in kids)
             and not (isinstance(node, sp.MatMul) and not a.is_Matrix)]
    if fixed:
        what = "function" if isinstance(node, ElementwiseApplyFunction) else f"argument {fixed[0]}"
        raise UnsupportedOperation(type(node).__name__, node, f"the {what} depends on the variable")


def _differential(node, definitions, dep):
    """(rule, d node): dZ = dE for a named intermediate, else the operator's differential rule."""
    if node in definitions:
        return DEFINITION, d(definitions[node])
    return cite(node, lambda n: dep.get(n, False)), operator(node).differential.apply(node, dep.__getitem__)


def _collect(node, parts, rewrite):
    """(adjoint of node, steps): its contributions summed, then simplified."""
    steps, G = [], parts[0]
    if len(parts) > 1:
        G = (matadd if node.is_Matrix else sp.Add)(*parts)
        # the terms as they came (unevaluated: tr(G dX) + tr(G dX) is not 2 tr(G dX) before the rule is applied)
        before = sp.Add(*[form(P, d(node)) for P in parts], evaluate=False)
        steps.append(Step(IDENTITIES["collect"], before, form(G, d(node)), node))
    S = simplify(G, rewrite)
    if S != G:
        steps.append(Step(algebra(G, S), form(G, d(node)), form(S, d(node)), node))
    # A X + B X = (A + B) X: the common outer factors of a collected sum written once
    F = collect_factors(S) if len(parts) > 1 else S
    if F != S:
        steps.append(Step(IDENTITIES["algebra"], form(S, d(node)), form(F, d(node)), node))
    return F, steps


def algebra(before, after):
    """The rule a simplification cites: Hadamard algebra where ⊙ or ∘ is involved, plain algebra otherwise."""
    hadamard_ops = (HadamardProduct, HadamardPower, ElementwiseApplyFunction)
    return IDENTITIES["simplify"] if before.has(*hadamard_ops) or after.has(*hadamard_ops) else IDENTITIES["algebra"]


def pullback(G, t, rewrite, node, term=None):
    """([(child, adjoint)], steps) with form(G, t) = Σ form(adjoint, d child), by the operators' transpose
    identities; the terms of a sum one by one (numbered when they are d node's own)."""
    if isinstance(t, (Differential, ScalarDifferential)):
        return [(t.arg, G)], []
    if t.is_zero or isinstance(t, sp.ZeroMatrix):
        return [], []  # a term that vanishes (H' = 0 almost everywhere)
    if isinstance(t, (sp.MatAdd, sp.Add)):
        pairs, steps = [], []
        for k, part in enumerate(t.args):
            more, done = pullback(G, part, rewrite, node, k if term is None else term)
            pairs += more
            steps += done
        return pairs, steps
    moved = transpose(G, t)
    if moved is None:
        raise UnsupportedOperation(type(t).__name__, t, "term is not linear in one differential")
    rule, G2, t2 = moved
    before, after = form(G, t), form(G2, t2)
    steps = [Step(rule, before, after, node, term)] if before != after else []
    if rule is IDENTITIES["hadamard"]:
        # the new adjoint is elementwise algebra: simplify it now, e.g. (Y ⊘ A) ⊙ A = Y
        S = simplify(G2, rewrite)
        if S != G2:
            steps.append(Step(algebra(G2, S), after, form(S, t2), node, term))
            G2 = S
    pairs, done = pullback(G2, t2, rewrite, node, term)
    return pairs, steps + done


def _expression(e, what):
    """e as a SymPy expression; a string is refused (sympify would evaluate it: parse text with derive.parse)."""
    try:
        return sp.sympify(e, strict=True)
    except sp.SympifyError:
        raise InvalidType(f"{what} must be a SymPy expression, got {type(e).__name__} {e!r:.80}; text is never "
                        f"evaluated (derive.parse reads it with the project's own parser)") from None


def _definitions(where):
    """{Z: E} in an order that computes them (each after the names it uses): each name a MatrixSymbol or Symbol,
    each E a SymPy expression, no name defined through itself."""
    definitions = {}
    for Z, E in dict(where or {}).items():
        if not isinstance(Z, (sp.MatrixSymbol, sp.Symbol)):
            raise InvalidArgument(f"where: {Z} is not a name; the keys of `where` are MatrixSymbols or Symbols")
        definitions[Z] = _expression(E, f"where[{Z}]")
    # resolved round by round: the names whose definitions use only resolved ones; a cycle Z -> … -> Z is left
    pending = {Z: {s for s in E.free_symbols if s in definitions} for Z, E in definitions.items()}
    order = []
    while True:
        ready = [Z for Z, uses in pending.items() if not uses & pending.keys()]
        if not ready:
            break
        for Z in ready:
            del pending[Z]
        order += ready
    if pending:
        path, Z = [], min(pending, key=str)
        while Z not in path:
            path.append(Z)
            Z = min(pending[Z] & pending.keys(), key=str)
        cycle = " -> ".join(map(str, [*path[path.index(Z):], Z]))
        raise InvalidArgument(f"where: the definitions are circular: {cycle}")
    return {Z: definitions[Z] for Z in order}


def _shape(e):
    return e.shape if e.is_Matrix else "scalar"


def zero_like(X):
    return sp.ZeroMatrix(*X.shape) if X.is_Matrix else sp.S.Zero
