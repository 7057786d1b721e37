"""The main job at this stage: derive a set of Cookbook identities and seed 004's network into output/."""
import sys
from pathlib import Path

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct as Had

from .api import derivation
from .functions import sigmoid
from .printing import text


def _identities():
    """name -> (f, X, where): the examples written by the demo, in order."""
    n = sp.Symbol("n", integer=True, positive=True)
    X, A, B = (sp.MatrixSymbol(k, n, n) for k in "XAB")
    a, b, x, w = (sp.MatrixSymbol(k, n, 1) for k in "abxw")
    examples = {
        "cookbook-eq101-trace-AXB": (sp.Trace(A * X * B), X, {}),
        "cookbook-eq108-trace-XtBX": (sp.Trace(X.T * B * X), X, {}),
        "cookbook-eq51-det-AXB": (sp.Determinant(A * X * B), X, {}),
        "cookbook-eq56-logdet": (sp.log(sp.det(X)), X, {}),
        "cookbook-eq61-aXinvb": (a.T * X.I * b, X, {}),
        "cookbook-eq124-trace-AXinvB": (sp.Trace(A * X.I * B), X, {}),
        "hadamard-trace-A-had-X": (sp.Trace(Had(A, X)), X, {}),
        "elementwise-1t-exp-Ax": (sp.OneMatrix(1, n) * (A * x).applyfunc(sp.exp), x, {}),
        "logistic-regression": (sp.log(1 + sp.exp(-(w.T * x)[0, 0])), w, {}),
    }
    # Seed 004: two-layer sigmoid network, BCE summed over the m samples (columns).
    n0, n1, n2, m = sp.symbols("n0 n1 n2 m", integer=True, positive=True)
    X0, Y = sp.MatrixSymbol("X", n0, m), sp.MatrixSymbol("Y", n2, m)
    W1, b1 = sp.MatrixSymbol("W1", n1, n0), sp.MatrixSymbol("b1", n1, 1)
    W2, b2 = sp.MatrixSymbol("W2", n2, n1), sp.MatrixSymbol("b2", n2, 1)
    Z1, A1 = sp.MatrixSymbol("Z1", n1, m), sp.MatrixSymbol("A1", n1, m)
    Z2, A2 = sp.MatrixSymbol("Z2", n2, m), sp.MatrixSymbol("A2", n2, m)
    one = sp.OneMatrix
    where = {Z1: W1 * X0 + b1 * one(1, m), A1: Z1.applyfunc(sigmoid),
             Z2: W2 * A1 + b2 * one(1, m), A2: Z2.applyfunc(sigmoid)}
    J = one(n2, m)
    loss = -(one(1, n2) * (Had(Y, A2.applyfunc(sp.log)) + Had(J - Y, (J - A2).applyfunc(sp.log))) * one(m, 1))
    for P in (W2, b2, W1, b1):
        examples[f"seed004-two-layer-bce-d{P.name}"] = (loss, P, where)
    return examples


def main(out="output"):
    """Write one text file per derivation and an index into `out`/identities."""
    folder = Path(out) / "identities"
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["# Derived gradients", "", "| example | f | ∂f/∂X |", "|---|---|---|"]
    for name, (f, X, where) in _identities().items():
        d = derivation(f, X, where)
        (folder / f"{name}.txt").write_text(str(d) + "\n", encoding="utf-8")
        rows.append(f"| [{name}]({name}.txt) | `{text(d.f)}` | `∂f/∂{text(X)} = {text(d.gradient)}` |")
        print(f"{name:40s} ∂f/∂{text(X)} = {text(d.gradient)}")
    (folder / "README.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {len(rows) - 4} derivations to {folder}/")


if __name__ == "__main__":
    main(*sys.argv[1:])
