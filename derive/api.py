"""The public entry points: gradient, gradients and derivation."""
from dataclasses import dataclass

import sympy as sp

from .engine import Step, Sweep, zero_like
from .printing import step_lines, text


def _check_wrt(wrt):
    for X in wrt:
        if not isinstance(X, (sp.MatrixSymbol, sp.Symbol)):
            raise TypeError(f"can only differentiate with respect to a MatrixSymbol or Symbol, got {X!r}")


def gradients(f, wrt, where=None):
    """{X: ∂f/∂X} for every X in wrt, from one reverse sweep; `where` names intermediates {Z: E}."""
    wrt = tuple(wrt)
    _check_wrt(wrt)
    sweep = Sweep(f, wrt, where)
    return {X: sweep.adjoint.get(X, zero_like(X)) for X in wrt}


def gradient(f, X, where=None):
    """∂f/∂X: the matrix G of X's shape with df = tr(Gᵀ dX)."""
    return gradients(f, [X], where)[X]


@dataclass(frozen=True)
class Derivation:
    """The recorded derivation of ∂f/∂X: every rule applied, in order, from df to the gradient."""

    f: sp.Basic
    wrt: sp.Basic
    steps: tuple
    gradient: sp.Basic
    where: tuple = ()

    def rules(self):
        """The rules used, each once, in order of first use."""
        return tuple(dict.fromkeys(step.rule for step in self.steps))

    def latex(self, notation=None, title="Derivation"):
        """The derivation as a standalone LaTeX document (every step justified by its rule)."""
        from .document import derivation_blocks, to_latex
        return to_latex(title, derivation_blocks(self, notation))

    def __str__(self):
        lines = [f"f = {text(self.f)}"]
        lines += [f"  where {text(Z)} = {text(E)}" for Z, E in self.where]
        lines += step_lines(self.steps)
        lines.append(f"∂f/∂{text(self.wrt)} = {text(self.gradient)}")
        return "\n".join(lines)


def derivation(f, X, where=None):
    """The Derivation of ∂f/∂X, every step recorded."""
    _check_wrt([X])
    sweep = Sweep(f, (X,), where)
    return Derivation(sweep.f, X, tuple(sweep.steps), sweep.adjoint.get(X, zero_like(X)),
                      tuple(sweep.definitions.items()))


__all__ = ["Derivation", "Step", "derivation", "gradient", "gradients"]
