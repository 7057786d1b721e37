"""Derivation documents as data (blocks), built from a result; printed to LaTeX and to HTML with MathML."""
import html
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from latex2mathml.converter import convert

from . import codegen
from .api import Derivation
from .latex import LatexPrinter, Notation, latex


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Text:
    """A paragraph: plain text and inline math, as [("text", s) | ("math", tex)]."""

    parts: tuple


@dataclass(frozen=True)
class Equations:
    """Aligned rows lhs = rhs, each with an optional note (the rule it applies); numbered or not."""

    rows: tuple  # (lhs, rhs, note)
    numbered: bool = False


@dataclass(frozen=True)
class Rules:
    """The rules a derivation uses: (name, statement in LaTeX)."""

    rows: tuple


@dataclass(frozen=True)
class Algorithm:
    """A generated function typeset from its Program: each statement lhs ← rhs in the document's notation, the
    values returned, and its Python source."""

    name: str
    arguments: tuple  # LaTeX of each argument
    rows: tuple       # (lhs, rhs) in LaTeX
    returns: tuple    # LaTeX of each value returned
    source: str


@dataclass(frozen=True)
class Diagram:
    """The network's forward and backward flow: values X, A^(1)…A^(L); W^(l) and δ^(l) between them."""

    values: tuple   # LaTeX of X, A^(1), …, A^(L)
    weights: tuple  # LaTeX of W^(1), …, W^(L)
    deltas: tuple   # LaTeX of δ^(1), …, δ^(L)


def _rules(rules):
    return Rules(tuple((r.name, r.latex) for r in rules))


def _steps(steps, notation):
    return Equations(tuple((latex(s.before, notation), latex(s.after, notation), s.rule.name) for s in steps))


def derivation_blocks(d, notation=None):
    """Blocks for a derive.derivation result: f, the definitions, the rules, every step, the boxed gradient."""
    n = notation or Notation()
    blocks = [Heading("Function"), Equations((("f", latex(d.f, n), ""),
                                              *[(latex(Z, n), latex(E, n), "definition") for Z, E in d.where]))]
    blocks += [Heading("Rules used"), _rules(d.rules())]
    blocks += [Heading("Derivation"), _steps(d.steps, n)]
    grad = r"\boxed{\frac{\partial f}{\partial %s} = %s}" % (latex(d.wrt, n), latex(d.gradient, n))
    blocks += [Heading("Result"), Equations(((grad, "", ""),))]
    return blocks


def backprop_blocks(result, notation=None):
    """Blocks for a Backprop: forward pass, loss, rules, the sweep layer by layer, δ recursion, gradients, forms."""
    n = notation or Notation()
    net = result.network
    shapes = ", ".join(f"{latex(M, n)} \\in \\mathbb{{R}}^{{{latex(M.rows)} \\times {latex(M.cols)}}}"
                       for M in (net.X, net.Y, *net.parameters))
    blocks = [Heading("Network"),
              Text((("text", f"Layout {net.layout}, {net.L} layers, loss {net.loss_name}, reduction "
                              f"{net.reduction}; "), ("math", shapes), ("text", ". Forward pass:"))),
              Equations(tuple((latex(Z, n), latex(E, n), "") for Z, E in result.forward.items()), numbered=True),
              Heading("Loss"), Equations((("L", latex(net.loss, n), ""),), numbered=True)]
    blocks += [Heading("Rules used"), _rules(result.rules())]
    blocks.append(Heading("Derivation, from the loss back to the first layer"))
    segment = []
    for step in result.steps:
        segment.append(step)
        if step.rule.name == "name the adjoint":
            blocks += [Text((("text", "Down to "), ("math", latex(step.after, n)), ("text", ":"))),
                       _steps(segment, n)]
            segment = []
    if segment:
        blocks += [Text((("text", "Reading off the parameters:"),)), _steps(segment, n)]
    blocks += [Heading("The δ recursion"),
               Equations(tuple((latex(dl, n), latex(E, n), "") for dl, E in result.deltas.items()))]
    grads = tuple((r"\boxed{\frac{\partial L}{\partial %s} = %s}" % (n.symbol(k), latex(G, n)), "", "")
                  for k, G in result.gradients.items())
    blocks += [Heading("Gradients"), Equations(grads)]
    forms = ["index"] + (["diag"] if net.m == 1 and net.layout != "AW" else [])
    for form in forms:
        title = {"index": "Index form (entry i, j)", "diag": "Diagonal-matrix form (single sample)"}[form]
        rows = tuple((_form_lhs(k, form, result, n), latex(E, n), "") for k, E in result.form(form).items())
        blocks += [Heading(title), Equations(rows)]
    blocks += [Heading("Generated code (one pass: forward, δ recursion, gradients)"),
               algorithm(result.program(), n)]
    blocks += [Heading("Forward and backward flow"),
               Diagram(tuple(latex(M, n) for M in (net.X, *[layer.A for layer in net.layers])),
                       tuple(latex(layer.W, n) for layer in net.layers),
                       tuple(latex(layer.delta, n) for layer in net.layers))]
    return blocks


def _form_lhs(key, form, result, n):
    """δ^(l), ∂L/∂W^(l) — with entry indices in the index form."""
    if key in result.gradients:
        P = result.parameter(key)
        index = ("_{i}" if P.cols == 1 else "_{ij}") if form == "index" else ""
        return r"\frac{\partial L}{\partial {%s}%s}" % (n.symbol(key), index)
    delta = next(d for d in result.deltas if d.name == key)
    return n.symbol(key) + (("_{i}" if delta.cols == 1 else "_{ij}") if form == "index" else "")


# ---- printers ------------------------------------------------------------------------------------------

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[a4paper,margin=1.6cm,landscape]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{tikz}
\usepackage{algpseudocode}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\begin{document}
\small
"""


def _tikz(diagram):
    """Boxes A^(l) left to right, forward arrows labelled W^(l), backward arrows labelled δ^(l)."""
    nodes = diagram.values
    lines = [r"\begin{center}\begin{tikzpicture}[box/.style={draw,rounded corners,minimum width=1.6cm,"
             r"minimum height=0.9cm}]"]
    for k, name in enumerate(nodes):
        lines.append(rf"\node[box] (n{k}) at ({3.2 * k:.1f},0) {{${name}$}};")
    lines.append(rf"\node[box] (loss) at ({3.2 * len(nodes):.1f},0) {{$L$}};")
    for k, (W, delta) in enumerate(zip(diagram.weights, diagram.deltas), 1):
        lines.append(rf"\draw[->,thick] (n{k - 1}.north east) -- node[above] {{${W}$}} (n{k}.north west);")
        lines.append(rf"\draw[->,thick,dashed] (n{k}.south west) -- node[below] {{${delta}$}} (n{k - 1}.south east);")
    last = len(nodes) - 1
    lines.append(rf"\draw[->,thick] (n{last}.east) -- (loss.west);")
    lines.append(r"\end{tikzpicture}\end{center}")
    lines.append(r"Solid: forward values $A^{(l)}$; dashed: errors $\delta^{(l)}$ flowing back; "
                 r"each $\partial L/\partial W^{(l)}$ combines $A^{(l-1)}$ with $\delta^{(l)}$.")
    return "\n".join(lines)


def _algorithmic(b):
    """The algorithmic environment: one \\State per statement, then the values returned."""
    returned = ", ".join(b.returns)
    return "\n".join([r"\begin{algorithmic}", r"    \Function{%s}{$%s$}" % (_tex_text(b.name), ", ".join(b.arguments)),
                      *(r"        \State $%s \gets %s$" % row for row in b.rows),
                      r"        \State \Return $%s$" % (f"({returned})" if len(b.returns) > 1 else returned),
                      r"    \EndFunction", r"\end{algorithmic}"])


def to_latex(title, blocks):
    """A standalone LaTeX document (article, amsmath; compiles with pdflatex)."""
    out = [_PREAMBLE, r"\section*{%s}" % _tex_text(title)]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(r"\subsection*{%s}" % _tex_text(b.text))
        elif isinstance(b, Text):
            out.append("".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.parts) + "\n")
        elif isinstance(b, Equations):
            env = "align" if b.numbered else "align*"
            rows = []
            for lhs, rhs, note in b.rows:
                row = f"{lhs} &= {rhs}" if rhs else lhs
                rows.append(row + (r" && \text{%s}" % _tex_text(note) if note else ""))
            out.append(f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}")
        elif isinstance(b, Rules):
            out.append("\\begin{align*}\n" + " \\\\\n".join(r"\text{%s:} & %s" % (_tex_text(name), tex)
                                                       for name, tex in b.rows) + "\n\\end{align*}")
        elif isinstance(b, Algorithm):
            out.append(_algorithmic(b))
        elif isinstance(b, Diagram):
            out.append(_tikz(b))
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


_SUPERSCRIPT = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁻ᴸˡ", "0123456789()-Ll"))
_SYMBOLS = {"δ": r"\delta", "σ": r"\sigma", "λ": r"\lambda", "Σ": r"\Sigma", "∂": r"\partial", "⊙": r"\odot",
            "ᵀ": r"^\top", "½": r"\tfrac12", "‖": r"\|", "≈": r"\approx", "→": r"\to", "−": "-", "∘": r"\circ"}


# every character TeX reads as a command, in one pass (so the braces of \textbackslash{} stay braces)
_TEX_SPECIAL = str.maketrans({"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "^": r"\^{}",
                              "~": r"\~{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "§": r"\S{}"})


def _tex_text(s):
    """Plain text for LaTeX: special characters escaped, Greek letters and superscripts as math."""
    s = s.translate(_TEX_SPECIAL)
    out, k = [], 0
    while k < len(s):
        if s[k] in _SUPERSCRIPT:
            j = k
            while j < len(s) and s[j] in _SUPERSCRIPT:
                j += 1
            out.append("$^{%s}$" % "".join(_SUPERSCRIPT[c] for c in s[k:j]))
            k = j
            continue
        c = s[k]
        out.append(("$-$" if c == "−" else f"${_SYMBOLS[c]}$") if c in _SYMBOLS else c)
        k += 1
    return "".join(out)


def _math(tex, display=False):
    return convert(tex, display="block" if display else "inline")


def _svg(diagram):
    nodes = diagram.values
    width = 130 * (len(nodes) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="120" viewBox="0 0 {width} 120">',
           '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z"/></marker></defs>']
    for k, name in enumerate([*nodes, "L"]):
        x = 20 + 130 * k
        out.append(f'<rect x="{x}" y="40" width="80" height="40" rx="8" fill="none" stroke="black"/>')
        out.append(f'<foreignObject x="{x}" y="48" width="80" height="30"><div xmlns="http://www.w3.org/1999/xhtml"'
                   f' style="text-align:center">{_math(name) if name != "L" else "L"}</div></foreignObject>')
    for k in range(len(nodes)):
        x0, x1 = 100 + 130 * k, 20 + 130 * (k + 1)
        out.append(f'<line x1="{x0}" y1="50" x2="{x1}" y2="50" stroke="black" marker-end="url(#arrow)"/>')
        if k < len(nodes) - 1:
            W, delta = diagram.weights[k], diagram.deltas[k]
            out.append(f'<line x1="{x1}" y1="72" x2="{x0}" y2="72" stroke="black" stroke-dasharray="4" '
                       f'marker-end="url(#arrow)"/>')
            for y, label in ((30, W), (98, delta)):
                out.append(f'<foreignObject x="{x0}" y="{y - 14}" width="{x1 - x0}" height="26"><div '
                           f'xmlns="http://www.w3.org/1999/xhtml" style="text-align:center">{_math(label)}</div>'
                           '</foreignObject>')
    out.append("</svg>")
    return "\n".join(out)


def _algorithm_html(b):
    """The statements as a numbered list of MathML formulas, then the Python source."""
    items = ["<li>%s</li>" % _math(r"%s \gets %s" % row) for row in b.rows]
    items.append(f"<li>return {_math(', '.join(b.returns))}</li>")
    return ("<ol>" + "".join(items) + "</ol><details><summary>Python source</summary><pre>"
            + html.escape(b.source) + "</pre></details>")


def to_html(title, blocks):
    """A self-contained HTML page; every formula is MathML, so it renders offline with no script."""
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
           "<style>body{font-family:serif;max-width:70em;margin:2em auto;padding:0 1em}"
           "td{padding:.2em .6em;vertical-align:middle}td.note{color:#555;font-style:italic}"
           "math[display=block]{margin:.5em 0}</style>",
           "</head><body>", f"<h1>{html.escape(title)}</h1>"]
    number = 0
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h2>{html.escape(b.text)}</h2>")
        elif isinstance(b, Text):
            out.append("<p>" + "".join(html.escape(s) if kind == "text" else _math(s) for kind, s in b.parts)
                       + "</p>")
        elif isinstance(b, Equations):
            out.append("<table>")
            for lhs, rhs, note in b.rows:
                number += 1 if b.numbered else 0
                cells = [_math(lhs), "=" if rhs else "", _math(rhs) if rhs else ""]
                if note:
                    cells.append(html.escape(note))
                elif b.numbered:
                    cells.append(f"({number})")
                out.append("<tr>" + "".join(f'<td{" class=note" if i == 3 else ""}>{c}</td>'
                                            for i, c in enumerate(cells)) + "</tr>")
            out.append("</table>")
        elif isinstance(b, Rules):
            out.append("<table>" + "".join(f"<tr><td>{html.escape(name)}:</td><td>{_math(tex)}</td></tr>"
                                           for name, tex in b.rows) + "</table>")
        elif isinstance(b, Algorithm):
            out.append(_algorithm_html(b))
        elif isinstance(b, Diagram):
            out.append(_svg(b))
            out.append("<p>Solid: forward values A<sup>(l)</sup>; dashed: errors δ<sup>(l)</sup> flowing back; "
                       "each ∂L/∂W<sup>(l)</sup> combines A<sup>(l−1)</sup> with δ<sup>(l)</sup>.</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def pdflatex(tex_path):
    """Compile tex_path next to itself with pdflatex; returns the PDF path, or None when no TeX is installed."""
    if shutil.which("pdflatex") is None:
        return None
    tex_path = Path(tex_path)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={tmp}",
                              str(tex_path.resolve())], capture_output=True, text=True, timeout=300)
        pdf = Path(tmp) / (tex_path.stem + ".pdf")
        if run.returncode != 0 or not pdf.exists():
            raise RuntimeError(f"pdflatex failed on {tex_path}:\n{run.stdout[-3000:]}")
        target = tex_path.with_suffix(".pdf")
        shutil.copyfile(pdf, target)
    return target


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
    """Write derivation.tex, derivation.html, gradients.py (and derivation.pdf when pdflatex exists) into
    `folder`.

    `result` is a Backprop, a Derivation, or a list of Derivations (documents only). Returns the paths written.
    """
    folder = Path(folder)
    title, blocks = _blocks(result, title, notation)
    # every file made before the first is written: an error leaves no half-written folder
    contents = {"derivation.tex": to_latex(title, blocks), "derivation.html": to_html(title, blocks)}
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


def algorithm(program, notation=None):
    """The Algorithm block of a codegen.Program, in the document's notation: values by their symbols, the shared
    sub-expressions as t_k, each computed gradient as ∂P; what the code does only for itself (the namespace, the
    shape checks, del) is left out, and x = P; x *= R is one statement."""
    n = notation or Notation()
    printer = LatexPrinter(n)
    printer.aliases = {}
    for statement in program.statements:
        name = str(statement.symbol)
        if name.startswith("_t") and name[2:].isdigit():
            printer.aliases[statement.symbol] = f"t_{{{name[2:]}}}"   # a shared sub-expression
    arguments = {i: a for i, a in program.arguments}

    def lhs(statement):
        if statement.output is not None:
            return r"\partial " + n.symbol(str(statement.output))
        return printer.doprint(statement.symbol)

    rows = tuple((lhs(s), printer.doprint(s.expr)) for s in program.statements)
    computed = {s.lines[-1].target: s for s in program.statements}
    returns = tuple(lhs(computed[out]) if out in computed else printer.doprint(arguments[out])
                    for _, out in program.outputs)
    return Algorithm(program.name, tuple(printer.doprint(a) for _, a in program.arguments), rows, returns,
                     codegen.python_source(program))
