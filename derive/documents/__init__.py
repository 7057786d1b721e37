"""Derivation documents: blocks built from results (blocks), typeset to LaTeX and PDF (tex) and HTML (html)."""
from pathlib import Path

from ..engine.derivation import Derivation
from .blocks import backprop_blocks, derivation_blocks
from .html import to_html
from .tex import pdflatex, to_latex


def _blocks(result, title, notation):
    """(title, blocks) of a Backprop, a Derivation or a list of Derivations."""
    if isinstance(result, (list, Derivation)):
        return title or "Derivation", [b for d in ([result] if isinstance(result, Derivation) else result)
                                       for b in derivation_blocks(d, notation)]
    return title or f"Backpropagation of {result.network.L}-layer network", backprop_blocks(result, notation)


def latex_document(result, notation=None, title=None):
    """A standalone LaTeX document of a Backprop, a Derivation or a list of Derivations (compiles with pdflatex)."""
    return to_latex(*_blocks(result, title, notation))


def html_document(result, notation=None, title=None):
    """A self-contained HTML page of a Backprop, a Derivation or a list of Derivations (MathML, no script)."""
    return to_html(*_blocks(result, title, notation))


def write(result, folder, title=None, notation=None, pdf=True):
    """Write derivation.tex, derivation.html, derivation.txt, gradients.py (and derivation.pdf when pdflatex exists)
    into `folder`.

    `result` is a Backprop, a Derivation, or a list of Derivations (documents only). Returns the paths written.
    """
    folder = Path(folder)
    title, blocks = _blocks(result, title, notation)
    # every file made before the first is written: an error leaves no half-written folder
    plain = "\n\n".join(map(str, result)) if isinstance(result, list) else (
        result.text() if hasattr(result, "text") else str(result))
    contents = {"derivation.tex": to_latex(title, blocks), "derivation.html": to_html(title, blocks),
                "derivation.txt": f"# {title}\n\n{plain}\n"}
    if hasattr(result, "module"):
        contents["gradients.py"] = result.module()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    tex = folder / "derivation.tex"
    if pdf:
        made = pdflatex(tex)
        if made is not None:
            written.append(made)
    return written
