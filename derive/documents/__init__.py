"""Derivation documents: blocks built from results (blocks), typeset to LaTeX and PDF (tex) and HTML (html)."""
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from ..engine.derivation import Derivation, check_detail
from ..engine.second import SecondDerivation
from ..networks.backprop import Backprop
from ..networks.network import Network
from ..printing.latex import Notation, latex
from ..printing.text import text, wrap_lines
from .blocks import Diagram, Equations, Heading, Text, backprop_blocks, network_title, network_words, symbols
from .html import to_html
from .second import expression_blocks, second_blocks
from ..errors import InvalidArgument
from .tex import PAPERS, pdflatex, to_latex


def _blocks(result, title, notation, detail="textbook", extra=(), sections=None):
    """(title, blocks) of a Backprop, a Derivation, a list of Derivations or a SecondDerivation; `sections` (the
    index form, the algorithm: blocks.SECTIONS) of a Backprop only."""
    check_detail(detail)
    if sections is not None and not isinstance(result, Backprop):
        raise InvalidArgument("sections choose parts of a network's document; this result is not a network's")
    if isinstance(result, SecondDerivation):
        what = "Hessian" if result.kind == "hessian" else "Hessian-vector product"
        return title or _title(f"The {what}", result), second_blocks(result, notation, detail)
    if isinstance(result, (list, Derivation)):
        return title or _title("The gradient", result), [
            b for d in ([result] if isinstance(result, Derivation) else result)
            for b in expression_blocks(d, notation, detail)]
    return title or network_title(result.network), backprop_blocks(result, notation, detail, extra, sections)


def _title(what, result):
    """What, of the function in mathematics, with respect to its variables: "The gradient of f = tr(A X B) with
    respect to X"."""
    results = result if isinstance(result, list) else [result]
    fs = dict.fromkeys(text(d.f) for d in results)
    return f"{what} of f = {' and '.join(fs)} with respect to {', '.join(text(d.wrt) for d in results)}"


def _paper(paper):
    if paper not in PAPERS:
        raise InvalidArgument(f"unknown paper {paper!r}; valid: {', '.join(PAPERS)}")
    return paper


def latex_document(result: "Backprop | Derivation | SecondDerivation | Sequence[Derivation]", notation: Notation | None = None, title: str | None = None,
                   detail: str = "textbook", paper: str = "a4", sections: Iterable[str] | None = None) -> str:
    """A standalone LaTeX document of a Backprop, a Derivation or a list of Derivations (compiles with pdflatex);
    `detail` "textbook" (one chain per layer) or "full" (every step), `paper` "a4" or "letter"; `sections` of a
    network's document: any of "index", "algorithm" (default: both for dense layers, neither for other blocks)."""
    heading, blocks = _blocks(result, title, notation, detail, sections=sections)
    return to_latex(heading, blocks, paper=_paper(paper))


def html_document(result: "Backprop | Derivation | SecondDerivation | Sequence[Derivation]", notation: Notation | None = None, title: str | None = None,
                  detail: str = "textbook", sections: Iterable[str] | None = None) -> str:
    """A self-contained HTML page of a Backprop, a Derivation or a list of Derivations (MathML, no script);
    `sections` as for latex_document."""
    heading, blocks = _blocks(result, title, notation, detail, sections=sections)
    return to_html(heading, blocks)


def _repr_html_(result):
    """What a notebook shows for a Backprop or a Derivation: the document's HTML, textbook detail."""
    return to_html(*_blocks(result, None, None), fragment=True)


def _network_html(net):
    """What a notebook shows for a Network: a sentence, its symbols with shapes, forward pass and loss."""
    n = Notation()
    blocks = [Text(network_words(net, n)), symbols(net, n),
              Equations((*((latex(Z, n), latex(E, n), "") for Z, E in net.forward.items()), ("L", latex(net.loss, n), "")))]
    return to_html(None, blocks, fragment=True)


# rich display in Jupyter: registered here, the stage that prints documents (the results know nothing of HTML)
for _cls, _display in ((Backprop, _repr_html_), (Derivation, _repr_html_), (SecondDerivation, _repr_html_),
                      (Network, _network_html)):
    setattr(_cls, "_repr_html_", _display)


def write(result, folder, title=None, notation=None, pdf=True, detail="textbook", paper="a4", extra=(), end=(),
          sections=None):
    """Write derivation.tex, derivation.html, derivation.txt, gradients.py (and derivation.pdf when pdflatex exists)
    into `folder`, in textbook or full `detail`; `extra` blocks follow a network's summary (a seed's own notation),
    `end` blocks close the document (a second-order part); `sections` choose a network document's index form and
    algorithm (as latex_document).

    `result` is a Backprop, a Derivation, or a list of Derivations (documents only). Returns the paths written.
    """
    title, blocks = _blocks(result, title, notation, detail, extra, sections)
    blocks = [*blocks, *end]
    _paper(paper)
    # every file made before the first is written: an error leaves no half-written folder
    plain = "\n\n".join(d.text(detail) for d in result) if isinstance(result, list) else result.text(detail)
    contents = {"derivation.tex": to_latex(title, blocks, paper), "derivation.html": to_html(title, blocks),
                "derivation.txt": "\n".join(wrap_lines([f"# {title}"], indent=2)) + f"\n\n{plain}\n"}
    if hasattr(result, "module"):
        contents["gradients.py"] = result.module()
    return _written(Path(folder), contents, "derivation.tex" if pdf else None)


def _written(folder, contents, pdf=None):
    """Write {name: text} into folder (a link there is replaced, never written through), then the PDF of the .tex
    named `pdf` when pdflatex exists; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*contents, *([Path(pdf).with_suffix(".pdf").name] if pdf else [])):
        if (folder / name).is_symlink():
            (folder / name).unlink()
    written = []
    for name, text in contents.items():
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    if pdf:
        made = pdflatex(folder / pdf)
        if made is not None:
            written.append(made)
    return written


GIVEN = ("Network", "Symbols", "Forward pass and loss", "Function")   # the headings of what a problem states


def problem_blocks(result, task, notation=None, title=None):
    """(title, blocks) of a problem sheet: what the solution document states before its derivation (the network in
    words, its symbols, forward pass and loss; or the function), its diagram, and `task` (text parts) to derive."""
    title, blocks = _blocks(result, title, notation)
    given = []
    for block in blocks:
        if isinstance(block, Heading) and block.text not in GIVEN:
            break
        given.append(block)
    diagram = [replace(b, hint=False) for b in blocks if isinstance(b, Diagram)]   # no gradient's form given away
    # the task under the first paragraph (the network or the function in words), what it is given after
    return title, [*given[:2], Heading("What to derive"), Text(task), *given[2:],
                   *([Heading("Forward and backward flow"), *diagram] if diagram else [])]


def write_problem(result, folder, task, title=None, notation=None, pdf=True, paper="a4"):
    """Write problem.tex, problem.html (and problem.pdf) into `folder`: the problem_blocks sheet; the paths."""
    title, blocks = problem_blocks(result, task, notation, title)
    contents = {"problem.tex": to_latex(title, blocks, _paper(paper)), "problem.html": to_html(title, blocks)}
    return _written(Path(folder), contents, "problem.tex" if pdf else None)
