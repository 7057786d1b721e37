"""The main job at this stage: derive every seed example and a set of Cookbook identities into output/."""
import html
import sys
from pathlib import Path

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct as Had

from ..documents import write
from ..engine.derivation import derivation
from ..printing.text import text
from .examples import EXAMPLES


def _identities():
    """name -> (f, X): the Cookbook and elementwise identities written by the demo, in order."""
    n = sp.Symbol("n", integer=True, positive=True)
    X, A, B = (sp.MatrixSymbol(k, n, n) for k in "XAB")
    a, b, x, w = (sp.MatrixSymbol(k, n, 1) for k in "abxw")
    return {
        "cookbook-eq101-trace-AXB": (sp.Trace(A * X * B), X),
        "cookbook-eq108-trace-XtBX": (sp.Trace(X.T * B * X), X),
        "cookbook-eq51-det-AXB": (sp.Determinant(A * X * B), X),
        "cookbook-eq56-logdet": (sp.log(sp.det(X)), X),
        "cookbook-eq61-aXinvb": (a.T * X.I * b, X),
        "cookbook-eq124-trace-AXinvB": (sp.Trace(A * X.I * B), X),
        "hadamard-trace-A-had-X": (sp.Trace(Had(A, X)), X),
        "elementwise-1t-exp-Ax": (sp.OneMatrix(1, n) * (A * x).applyfunc(sp.exp), x),
        "logistic-regression": (sp.log(1 + sp.exp(-(w.T * x)[0, 0])), w),
    }


def _progress(items, label):
    """items, with a progress bar when stdout is a terminal (rich), plain otherwise."""
    items = list(items)
    if not sys.stdout.isatty():
        return items
    from rich.progress import track
    return track(items, description=label, transient=True)


def _code(text):
    """Text as code in a Markdown table cell: a | (a determinant's bars) would end the cell, so it is written as
    HTML with the bar as an entity, which GitHub and the documentation site both show as |."""
    if "|" not in text:
        return f"`{text}`"
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content + "\n", encoding="utf-8")


def main(out="output", pdf=True, detail="textbook", paper="a4"):
    """Write output/<example>/derivation.{txt,tex,html} (and .pdf with TeX) for every seed example,
    output/identities/, and an index."""
    out = Path(out)
    rows = ["# Derivations written by `make demo`", "", "## Seed examples", "",
            "Five published hand derivations of backpropagation in matrix form (the seeds 000–004, each in its own "
            "notation), a second-order pair and three networks of blocks, each as a handout (HTML, LaTeX, text) and "
            "its generated code.", "", "| example | source | result |", "|---|---|---|"]
    for name, example in _progress(EXAMPLES.items(), "deriving the seed examples"):
        result = example.derive()
        if isinstance(result, list):
            summary = "; ".join(f"∂f/∂{text(d.wrt)} = {text(d.gradient)}" for d in result)
        elif not hasattr(result, "deltas"):   # a Hessian
            summary = f"H = {text(result.result)}"
        else:
            summary = "; ".join(f"{text(k)} = {text(v)}" for k, v in list(result.deltas.items())[:2])
        write(result, out / name, title=example.title, pdf=pdf, detail=detail, paper=paper,
              extra=example.appendix() if example.appendix else (), end=example.end() if example.end else ())
        code = f", [code]({name}/gradients.py)" if (out / name / "gradients.py").exists() else ""
        rows.append(f"| {name}: [html]({name}/derivation.html), [tex]({name}/derivation.tex), "
                    f"[text]({name}/derivation.txt){code} | {example.source} | {_code(summary)} |")
        print(f"{name:32s} {summary}")
    rows += ["", "## Identities", "", "| example | f | ∂f/∂X |", "|---|---|---|"]
    for name, (f, X) in _identities().items():
        d = derivation(f, X)
        _write(out / "identities" / f"{name}.txt", str(d))
        rows.append(f"| [{name}](identities/{name}.txt) | {_code(text(d.f))} | {_code(f'∂f/∂{text(X)} = {text(d.gradient)}')} |")
    _write(out / "README.md", "\n".join(rows))
    print(f"wrote {len(EXAMPLES)} examples and {len(_identities())} identities to {out}/")


if __name__ == "__main__":
    main(*sys.argv[1:2])
