"""Reverse-mode matrix differentials: df = Σ tr(G_Nᵀ dN) pushed from f down to the variables."""
from collections import defaultdict
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement, MatrixExpr

from ._shapes import memoised
from .errors import InvalidArgument, InvalidType, ShapeError, UnsupportedOperation
from .expr import (LEAVES, Differential, ScalarDifferential, d, hadamard, has_differential, matadd, matmul, postorder,
                   prehash, prepared, tp, unit)
from .functions import apply
from .hadamard import simplify
from .rules import DIFFERENTIALS, IDENTITIES, Rule, rule_for


@dataclass(frozen=True)
class Step:
    """One rule application: `before` rewritten into `after` by `rule`."""

    rule: Rule
    before: sp.Basic
    after: sp.Basic


def form(G, D):
    """The differential term with adjoint G on D: tr(Gᵀ D) for a matrix, G·D for a scalar."""
    return sp.Trace(matmul(tp(G), D)) if D.is_Matrix else G * D


def normalise(expr, memo=None):
    """expr with every elementwise function in canonical form (so equal sub-expressions are equal); iterative, for
    deeply nested expressions."""
    memo = {} if memo is None else memo
    for node in postorder(prehash(expr), lambda n: () if n in memo else _normal_children(n)):
        if node not in memo:
            memo[node] = prepared(_normal_node(node, memo))  # hash and shape now: its children's are known
    return memo[expr]


def _normal_children(expr):
    if isinstance(expr, ElementwiseApplyFunction):
        return (expr.expr,)
    if isinstance(expr, sp.Sum) or not expr.args or isinstance(expr, (sp.MatrixSymbol, sp.MatrixBase, sp.Lambda)):
        return ()
    return expr.args


def _normal_node(expr, memo):
    """One node of normalise, its children already in memo."""
    if isinstance(expr, ElementwiseApplyFunction):
        return apply(expr.function, memo[expr.expr])
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


class Sweep:
    """One reverse sweep over the DAG of f: adjoints of every node that depends on a variable."""

    @memoised
    def __init__(self, f, wrt, definitions=None, names=None):
        definitions = _definitions(definitions)
        self.names = dict(names or {})  # {Z: δ}: once its adjoint is known, Z passes δ on, as a symbol
        memo = {}
        self.definitions = {Z: normalise(E, memo) for Z, E in definitions.items()}
        for Z, E in self.definitions.items():
            if E.is_Matrix != Z.is_Matrix or (Z.is_Matrix and Z.shape != E.shape):
                raise ShapeError(f"definition of {Z}: shape {_shape(Z)} does not match shape {_shape(E)} of {E}")
        self.f = normalise(_expression(f, "f"), memo)
        if self.f.is_Matrix and self.f.shape != (1, 1):
            raise ShapeError(f"f must be a scalar or a 1×1 matrix, got shape {self.f.shape}: {f}")
        self.wrt = tuple(wrt)
        self.rewrite = {E: Z for Z, E in self.definitions.items()}
        self.steps = []
        self.adjoint = {}
        self._run()

    def _children(self, node):
        rule = rule_for(node, self.definitions)
        if rule is DIFFERENTIALS["definition"]:
            return (self.definitions[node],)
        return rule.children(node) if rule else ()

    def _order(self):
        """Nodes children-first, and which depend on a variable."""
        order, dep = postorder(self.f, self._children), {}
        for node in order:
            kids = self._children(node)
            dep[node] = node in self.wrt or any(dep[k] for k in kids)
            if not kids and not dep[node] and not isinstance(node, LEAVES) and node.has(*self.wrt):
                raise UnsupportedOperation(type(node).__name__, node)
            if isinstance(node, ElementwiseApplyFunction) and node.function.has(*self.wrt):
                raise UnsupportedOperation("ElementwiseApplyFunction", node, "the function depends on the variable")
        return order, dep

    def _run(self):
        order, self.dep = self._order()
        pending = defaultdict(list)
        pending[self.f].append(sp.Identity(1) if self.f.is_Matrix else sp.S.One)
        for node in reversed(order):
            if not self.dep[node] or node not in pending:
                continue
            G = self._collect(node, pending.pop(node))
            self.adjoint[node] = G
            if node in self.names:
                # δ := ∂f/∂Z, so that what comes before Z is written in terms of δ
                self.steps.append(Step(IDENTITIES["name"], form(G, d(node)), form(self.names[node], d(node))))
                G = self.names[node]
            if node in self.wrt and node not in self.definitions:
                continue
            rule = rule_for(node, self.definitions)
            if rule is DIFFERENTIALS["definition"]:
                dN = d(self.definitions[node])
            else:
                dN = rule.apply(node, self.dep.__getitem__)
            self.steps.append(Step(rule, form(G, d(node)), form(G, dN)))
            for child, Gc in self._pullback(G, dN):
                pending[child].append(Gc)
        for X in self.wrt:
            if X in self.adjoint:
                self.steps.append(Step(IDENTITIES["read off"], form(self.adjoint[X], d(X)), self.adjoint[X]))

    def _collect(self, node, parts):
        """The adjoint of node: its contributions summed, then simplified."""
        G = parts[0]
        if len(parts) > 1:
            G = (matadd if node.is_Matrix else sp.Add)(*parts)
            self.steps.append(Step(IDENTITIES["collect"], sp.Add(*[form(P, d(node)) for P in parts]),
                                   form(G, d(node))))
        S = simplify(G, self.rewrite)
        if S != G:
            self.steps.append(Step(IDENTITIES["simplify"], form(G, d(node)), form(S, d(node))))
        return S

    def _pullback(self, G, t):
        """[(child, adjoint)] with form(G, t) = Σ form(adjoint, d child), by the trace identities."""
        if isinstance(t, (Differential, ScalarDifferential)):
            return [(t.arg, G)]
        if t.is_zero or isinstance(t, sp.ZeroMatrix):
            return []  # a term that vanishes (H' = 0 almost everywhere)
        if isinstance(t, (sp.MatAdd, sp.Add)):
            return [pair for term in t.args for pair in self._pullback(G, term)]
        rewritten = self._identity(G, t)
        if rewritten is None:
            raise UnsupportedOperation(type(t).__name__, t, "term is not linear in one differential")
        name, G2, t2 = rewritten
        before, after = form(G, t), form(G2, t2)
        if before != after:
            self.steps.append(Step(IDENTITIES[name], before, after))
        if name == "hadamard":
            # the new adjoint is elementwise algebra: simplify it now, e.g. (Y ⊘ A) ⊙ A = Y
            S = simplify(G2, self.rewrite)
            if S != G2:
                self.steps.append(Step(IDENTITIES["simplify"], after, form(S, t2)))
                G2 = S
        return self._pullback(G2, t2)

    @staticmethod
    def _identity(G, t):
        """(identity, G', t') with form(G, t) = form(G', t') and t' one operator closer to a differential."""
        if isinstance(t, sp.MatMul):
            coeff, mats = t.as_coeff_matrices()
            if has_differential(coeff):
                # tr(Gᵀ (du) M) = du · tr(Gᵀ M)
                return "linearity", sp.Trace(matmul(tp(G), *mats)), coeff
            k = next(i for i, M in enumerate(mats) if has_differential(M))
            P, Q = mats[:k], mats[k + 1:]
            # tr(Gᵀ c P T Q) = tr((c Pᵀ G Qᵀ)ᵀ T)
            G2 = matmul(coeff, tp(matmul(*P)) if P else None, G, tp(matmul(*Q)) if Q else None)
            return ("cyclic" if P or Q else "linearity"), G2, mats[k]
        if isinstance(t, sp.Transpose):
            # tr(Gᵀ Tᵀ) = tr(T G) = tr((Gᵀ)ᵀ T)
            return "transpose", tp(G), t.arg
        if isinstance(t, HadamardProduct):
            k = next(i for i, M in enumerate(t.args) if has_differential(M))
            # tr(Gᵀ (H ⊙ T)) = tr((G ⊙ H)ᵀ T)
            return "hadamard", hadamard(G, *t.args[:k], *t.args[k + 1:]), t.args[k]
        if isinstance(t, sp.Mul):
            inner = [a for a in t.args if has_differential(a)]
            if len(inner) == 1:
                # g · (c u) = (g c) · u
                others = list(t.args)
                others.remove(inner[0])
                return "linearity", G * sp.Mul(*others), inner[0]
        if isinstance(t, sp.Trace):
            # g tr(T) = tr((g I)ᵀ T)
            return "scalar", matmul(G, sp.Identity(t.arg.rows)), t.arg
        if isinstance(t, MatrixElement):
            # g T_ij = tr((g E_ij)ᵀ T)
            return "scalar", matmul(G, unit(t.parent.shape, t.i, t.j)), t.parent
        return None


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
