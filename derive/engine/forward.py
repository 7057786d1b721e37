"""Forward-mode matrix differentials: the rules of the operator table applied from the variables up, so that dE is
known along a direction (dX = V) without any reverse sweep. Applied to a gradient it gives the Hessian's action."""
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..core.expr import LEAVES, d, hadamard, is_leaf, matadd, matmul, postorder, prehash, replace_nodes, substitute, tp
from ..core.hadamard import simplify
from ..core.rules import DEFINITION, cite, operator
from ..errors import UnsupportedOperation
from .backward import Step, refuse_fixed, tainted_names, zero_like


def tangent(expr, seeds, definitions=None, names=None):
    """(T, steps): the differential of expr when each variable X of `seeds` moves by seeds[X] (a matrix of X's shape,
    or dX itself); every rule applied is a Step d(node) = rule(d children). `definitions` {Z: E} are followed (dZ =
    dE); `names` {E: Z} writes a value E by its name Z where it reappears (σ(Z) as A)."""
    definitions = dict(definitions or {})

    def kids(node):
        if node in definitions:
            return (definitions[node],)
        if node in seeds or isinstance(node, LEAVES):
            return ()
        entry = operator(node)
        return entry.differential.children(node) if entry else ()

    order = postorder(prehash(expr), kids)
    # E written as Z where it reappears (σ(D w) as a for a := σ(D w)), as in the reverse sweep
    rewrite = {**(names or {}), **{E: Z for Z, E in definitions.items() if not is_leaf(E)}}
    T, steps, tainted = {}, [], tainted_names(seeds, definitions)
    for node in order:
        if node in seeds:
            T[node] = seeds[node]
            continue
        if node not in definitions:
            refuse_fixed(node, kids(node), tainted)
        varying = [k for k in kids(node) if k in T]
        if not varying:
            continue
        if node in definitions:
            # dZ = dE for a named intermediate Z := E
            T[node] = T[definitions[node]]
            steps.append(Step(DEFINITION, d(node), d(definitions[node]), node))
            continue
        entry = operator(node)
        if entry is None:
            raise UnsupportedOperation(type(node).__name__, node, "it has no differential rule")
        dep = T.__contains__
        rule, dN = cite(node, dep), entry.differential.apply(node, dep)
        steps.append(Step(rule, d(node), dN, node))
        value = tidy(substitute(dN, {d(k): T[k] for k in varying}))
        # the elementwise algebra of the sum or product simplified: y ⊙ da + (1 − y) ⊙ da = da
        value = simplify(value, rewrite) if isinstance(value, (sp.MatAdd, HadamardProduct)) else \
            substitute(value, rewrite) if rewrite else value
        if _is_zero(value):
            continue
        T[node] = value
    return T.get(expr, zero_like(expr)), steps


def _is_zero(e):
    return isinstance(e, sp.ZeroMatrix) or (not e.is_Matrix and e == 0)


def tidy(e):
    """e with the zero terms and factors that substituting a tangent leaves dropped: A 0 = 0, 0 ⊙ B = 0, X + 0 = X,
    0ᵀ = 0, tr 0 = 0."""
    def rebuild(node):
        if isinstance(node, sp.MatMul):
            return matmul(*node.args)
        if isinstance(node, sp.MatAdd):
            return matadd(*node.args)
        if isinstance(node, HadamardProduct):
            if any(_is_zero(a) for a in node.args):
                return sp.ZeroMatrix(*node.shape)
            return hadamard(*node.args)
        if isinstance(node, sp.Transpose) and isinstance(node.arg, sp.ZeroMatrix):
            return tp(node.arg)
        if isinstance(node, (sp.Trace, MatrixElement)) and isinstance(node.args[0], sp.ZeroMatrix):
            return sp.S.Zero
        return None
    return replace_nodes(e, rebuild)
