"""The public entry points: gradient, gradients and derivation."""
from collections.abc import Mapping, Sequence
import functools
from dataclasses import dataclass
from typing import Any

import sympy as sp

from ..codegen import program as codegen
from ..core.shapes import memoised
from ..errors import InvalidArgument, InvalidType, ShapeError
from ..core.expr import hadamard, matadd, matmul, tp
from ..core.rules import IDENTITIES
from ..printing.text import step_lines, text
from .backward import Step, backward, prepare, zero_like

PROGRAMS = ("gradient", "value", "value_and_gradient")
SYMMETRIC = (False, True, "entries")


def _check_wrt(wrt):
    for X in wrt:
        if not isinstance(X, (sp.MatrixSymbol, sp.Symbol)):
            raise InvalidType(f"can only differentiate with respect to a MatrixSymbol or Symbol, got {X!r}")


def gradients(f: sp.Basic, wrt: Sequence[sp.MatrixSymbol], where: Mapping | None = None,
              symmetric: bool | str = False) -> dict:
    """{X: ∂f/∂X} for every X in wrt, from one reverse sweep; `where` names intermediates {Z: E}; `symmetric` (see
    symmetric_gradient) restricts every variable to symmetric matrices."""
    wrt = tuple(wrt)
    _check_wrt(wrt)
    adjoints, _ = backward(f, wrt, where)
    return {X: symmetric_gradient(adjoints.get(X, zero_like(X)), symmetric) for X in wrt}


def gradient(f: sp.Basic, X: sp.MatrixSymbol, where: Mapping | None = None, symmetric: bool | str = False) -> sp.Basic:
    """∂f/∂X: the matrix G of X's shape with df = tr(Gᵀ dX); symmetric=True for a symmetric X (see
    symmetric_gradient)."""
    return gradients(f, [X], where, symmetric)[X]


def sym(G):
    """(G + Gᵀ)/2."""
    return matmul(sp.Rational(1, 2), matadd(G, tp(G)))


def symmetric_gradient(G: sp.Basic, how: bool | str = True) -> sp.Basic:
    """G restricted to symmetric matrices S = Sᵀ: sym(G) = (G + Gᵀ)/2 for how=True, the gradient in the space of
    symmetric matrices (with the trace inner product: df = tr(sym(G)ᵀ dS) for every symmetric dS); G + Gᵀ − G ⊙ I
    for how="entries", the derivative by the n(n+1)/2 independent entries (each off-diagonal entry stands for two,
    so it is not a gradient for the trace inner product and a step along it is not steepest descent)."""
    if how not in SYMMETRIC:
        raise InvalidArgument(f"symmetric must be one of {SYMMETRIC}, got {how!r}")
    if not how:
        return G
    if not G.is_Matrix or G.rows != G.cols:
        raise ShapeError(f"symmetric={how!r} needs a square variable, got shape {getattr(G, 'shape', 'scalar')}")
    if how == "entries":
        return matadd(G, tp(G), matmul(-1, hadamard(G, sp.Identity(G.rows))))
    return sym(G)


def arguments(exprs, where):
    """The matrices and scalars that exprs and the `where` definitions depend on, by name; the names defined and the
    sizes of the matrices' shapes (read off the arrays) are not arguments."""
    defined = {Z for Z, _ in where}
    free = set().union(*[e.free_symbols for e in exprs], *[E.free_symbols for _, E in where]) - defined
    sizes = set().union(*[set(M.shape) for M in free if M.is_Matrix])
    return sorted(free - sizes, key=str)


def once(function):
    """function(result, *args) computed once per result and arguments, and kept on the result (a frozen result never
    changes; a new one, even of the same network, computes its own)."""
    @functools.wraps(function)
    def kept(result, *args):
        kept_here = result.__dict__.setdefault("_once", {})
        key = (function, *args)
        if key not in kept_here:
            kept_here[key] = function(result, *args)
        return kept_here[key]
    return kept


class Result:
    """What Derivation and Backprop share: the rules used, and their generated code (built by derive.codegen from
    `plan(what)`, one of PROGRAMS)."""

    PROGRAMS: tuple[str, ...] = ()

    def rules(self):
        """The rules used, each once, in order of first use."""
        return tuple(dict.fromkeys(step.rule for step in self.steps))

    def program(self, what=None):
        """The codegen.Program of the function `what` (default: the first of PROGRAMS)."""
        return self._program(what or self.PROGRAMS[0])

    @once   # a document's algorithm and the module it writes read the same programs
    def _program(self, what):
        return codegen.program(*self.plan(what), name=what, doc=self._docstring(what), notes=self._notes(what))

    def _notes(self, what):
        """{output key or symbol: comment} for the generated code."""
        return {}

    def source(self, what=None):
        """Python source of the function `what`: array API code, no SymPy needed to run it."""
        return codegen.python_source(self.program(what))

    def numpy(self, what=None):
        """The compiled function `what`, called with keyword arrays named after the symbols; runs on any array API
        library (NumPy, array_api_strict, Dask, PyTorch, JAX, ...)."""
        return codegen.keyword_function(self.program(what))

    def module(self):
        """A standalone Python module with every function of PROGRAMS (array_api_compat is used when installed;
        NumPy ≥ 2 arrays work without it). Deterministic text."""
        return codegen.module_source(self._module_head(), [self.program(what) for what in self.PROGRAMS])


@dataclass(frozen=True)
class Derivation(Result):
    """The recorded derivation of ∂f/∂X: every rule applied, in order, from df to the gradient.
    Its code: .numpy(what) compiles one of PROGRAMS (default "gradient": g(A=..., X=...) -> ∂f/∂X), .source(what),
    .module()."""

    PROGRAMS = PROGRAMS

    f: sp.Basic
    wrt: sp.Basic
    steps: tuple
    gradient: sp.Basic
    where: tuple = ()

    def plan(self, what="gradient"):
        """(arguments, statements, outputs) of one of PROGRAMS: "gradient" (∂f/∂X), "value" (f) or
        "value_and_gradient" ({"f": f, "<X>": ∂f/∂X}, "∂f/∂f" for a variable named f); the `where` intermediates are computed once first.
        The arguments are the matrices and scalars f depends on, by name; sizes are read off their shapes."""
        if what not in PROGRAMS:
            raise InvalidArgument(f"unknown program {what!r}; valid: {', '.join(PROGRAMS)}")
        args = arguments([self.f, self.gradient, self.wrt], self.where)
        outputs = {"gradient": self.gradient, "value": self.f,
                   "value_and_gradient": {"f": self.f, self._gradient_key(): self.gradient}}[what]
        return args, list(self.where), outputs

    def specification(self):
        """What an independent verification needs, as plain data: f, the variable, the definitions, the gradient
        and the arguments of the generated functions."""
        return {"kind": "expression", "title": f"f = {text(self.f)}", "f": self.f, "wrt": self.wrt,
                "where": list(self.where), "gradient": self.gradient, "arguments": self.plan()[0]}

    def _module_head(self):
        args, _, _ = self.plan("value_and_gradient")
        shapes = ", ".join(f"{text(a)} {text(a.rows)}×{text(a.cols)}" if a.is_Matrix else f"{text(a)} scalar"
                           for a in args)
        return "\n".join([f"∂f/∂{text(self.wrt)} for f = {text(self.f)}, generated by derive (matrix-backprop).", "",
                          "Every function takes the arrays of one array library as keyword or positional arguments",
                          "and returns arrays of the same library and floating type.", "", f"Inputs: {shapes}.",
                          *(f"    where {text(Z)} = {text(E)}" for Z, E in self.where),
                          f"∂f/∂{text(self.wrt)} = {text(self.gradient)}"])

    def _docstring(self, what):
        return {"gradient": f"∂f/∂{text(self.wrt)} = {text(self.gradient)}.", "value": f"f = {text(self.f)}.",
                "value_and_gradient": f"{{'f': f, '{self._gradient_key()}': ∂f/∂{text(self.wrt)}}}."}[what]

    def _gradient_key(self):
        # the gradient's key is the variable's name; a variable named f gets "∂f/∂f", not the value's key
        return str(self.wrt) if str(self.wrt) != "f" else "∂f/∂f"

    def torch(self) -> Any:
        """f as a PyTorch function of its arguments (f.arguments, positional or by keyword) whose backward is the
        derived ∂f/∂X; any other argument that requires grad is refused."""
        from ..frameworks.torch import derivation_function
        return derivation_function(self)

    def jax(self) -> Any:
        """f as a JAX function of its arguments (a jax.custom_vjp) whose VJP is the derived ∂f/∂X; works under jax.jit
        and jax.grad; differentiating another argument is refused."""
        from ..frameworks.jax import derivation_function
        return derivation_function(self)

    def text(self, detail="textbook"):
        """f, its definitions, the steps (bookkeeping folded into the step before for "textbook", every one for
        "full") and the gradient, in lines of at most 100 columns."""
        lines = [f"f = {text(self.f)}"]
        lines += [f"  where {text(Z)} = {text(E)}" for Z, E in self.where]
        lines += step_lines(self.steps if check_detail(detail) == "full" else self.folded())
        lines.append(f"∂f/∂{text(self.wrt)} = {text(self.gradient)}")
        return "\n".join(lines)

    def folded(self):
        """The steps with the bookkeeping ones (sign moves, scalar as trace) folded into the step before."""
        return [Step(rules[0], before, after, step.node, step.term) for rules, before, after, step in fold(self.steps)]

    def __str__(self):
        return self.text("full")

    def __repr__(self):
        return f"<Derivation of ∂f/∂{text(self.wrt)}, f = {text(self.f)}>"


DETAILS = ("textbook", "full")


def check_detail(detail):
    """detail itself, one of DETAILS; anything else is an InvalidArgument naming the valid ones."""
    if detail not in DETAILS:
        raise InvalidArgument(f"unknown detail {detail!r}; valid: {', '.join(DETAILS)}")
    return detail


# identities that only move signs and scalars about: folded into the step before, not cited on their own
BOOKKEEPING = {IDENTITIES[k] for k in ("scalar", "linearity", "name", "entry")}


def fold(steps):
    """The steps with the bookkeeping ones folded into the step before: [(rules, before, after, last step)]."""
    rows = []
    for s in steps:
        if s.rule in BOOKKEEPING and rows and rows[-1][2] == s.before:
            rules, before, _, _ = rows[-1]
            rows[-1] = (rules, before, s.after, s)
        else:
            rows.append(((s.rule,), s.before, s.after, s))
    return rows


@memoised
def derivation(f: sp.Basic, X: sp.MatrixSymbol, where: Mapping | None = None) -> "Derivation":
    """The Derivation of ∂f/∂X, every step recorded."""
    _check_wrt([X])
    f, definitions = prepare(f, where)
    adjoints, steps = backward(f, (X,), definitions)
    return Derivation(f, X, tuple(steps), adjoints.get(X, zero_like(X)), tuple(definitions.items()))


__all__ = ["Derivation", "Step", "derivation", "gradient", "gradients"]
