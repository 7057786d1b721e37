"""Blocks typeset as a standalone LaTeX article (amsmath, TikZ, algpseudocode), and compiled with pdflatex."""
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import DocumentError
from .blocks import width
from .blocks import Algorithm, ChainBlock, Diagram, Equations, Heading, Rules, Summary, Symbols, Text, Trace

# paper -> (width, height) in cm; the text area is MARGIN cm inside each edge
PAPERS = {"a4": (21.0, 29.7), "letter": (21.59, 27.94)}
MARGIN = 2


def text_area(paper="a4"):
    """The text area the preamble's geometry sets, (left, top, right, bottom) in PostScript points from the page's
    top left corner (the coordinates of pdftotext -bbox)."""
    width, height = PAPERS[paper]
    point = 72 / 2.54   # big points per cm
    return MARGIN * point, MARGIN * point, (width - MARGIN) * point, (height - MARGIN) * point


_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[%(paper)spaper,margin=%(margin)gcm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{tikz}
\usepackage{algpseudocode}
\usepackage{longtable,array,graphicx}
\allowdisplaybreaks[1]
\setlength{\parindent}{0pt}
\setlength{\emergencystretch}{3em}
\newcommand{\rulename}[1]{\text{\footnotesize\itshape #1}}
%% a heading starts a new page unless #1 of space is left under it (needspace's test, without the package)
\makeatletter
\newcommand{\needspace}[1]{\par\penalty-100\begingroup\setlength{\dimen@}{#1}\dimen@ii\pagegoal
  \advance\dimen@ii-\pagetotal\ifdim\dimen@>\dimen@ii\ifdim\dimen@ii>\z@\vfil\fi\break\fi\endgroup}
%% \fitmath{x}: x in display style, scaled down to \fitwidth where wider (a result wider than the page)
\newlength{\fitwidth}
\newcommand{\fitmath}[1]{\sbox\z@{$\displaystyle #1$}\ifdim\wd\z@>\fitwidth\resizebox{\fitwidth}{!}{\usebox\z@}%%
  \else\usebox\z@\fi}
%% \fitbeside{x}: \fitwidth is what a line leaves beside x
\newcommand{\fitbeside}[1]{\settowidth{\fitwidth}{#1}\setlength{\fitwidth}{\dimexpr\linewidth-\fitwidth\relax}}
%% \padded{x}: x with half \jot more above and below it (a table's rows of fractions \jot apart, as in align)
\newcommand{\padded}[1]{\raisebox{\z@}[\dimexpr\height+.5\jot][\dimexpr\depth+.5\jot]{#1}}
\makeatother
%% a table breaks across pages: a summary's box is closed at the foot of each page and opened at the head of the next
\setlength{\LTpre}{\medskipamount}
\setlength{\LTpost}{\medskipamount}
\begin{document}
"""

def _chain(b):
    """A chain as one align*: lhs = row 1 (rules at the right) = row 2 …; then ⇒ each result."""
    rows = []
    for k, (lines, rules) in enumerate(b.rows):
        tag = r" \tag*{$\rulename{%s}$}" % _tex_text(rules) if rules else ""
        rows.append(rf"{b.lhs if k == 0 else ''} &= \fitmath{{{lines[0]}}}" + (tag if len(lines) == 1 else ""))
        for j, line in enumerate(lines[1:], 1):
            rows.append(rf"&\phantom{{=}} \fitmath{{{line}}}" + (tag if j == len(lines) - 1 else ""))
    for lhs, rhs in b.results:
        first, *more = (rhs,) if isinstance(rhs, str) else rhs   # a wide result: its factors on lines of their own
        rows.append(r"&\Rightarrow\ %s = \fitmath{%s}" % (lhs, first))
        rows += [r"&\phantom{\Rightarrow\ %s =} \fitmath{%s}" % (lhs, line) for line in more]
    # every line as wide as the chain's lhs and the widest ⇒ lhs = leave it
    widest = max((lhs for lhs, _ in b.results), key=width, default="")
    fit = r"\fitbeside{$\displaystyle %s = %s$}" % (b.lhs, rf"\Rightarrow\ {widest} =" if widest else "")
    title = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.title)
    note = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.note)
    remark = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.remark)
    return (r"\needspace{6\baselineskip}\paragraph{%s}%s" % (title, f" ({note})" if note else "")
            + f"\n{fit}\n\\begin{{align*}}\n"
            + " \\\\\n".join(rows) + "\n\\end{align*}" + (f"\n{remark}\n" if remark else ""))


def _tikz(diagram):
    """Boxes A^(l) left to right, forward arrows labelled W^(l), backward arrows labelled δ^(l)."""
    nodes = diagram.values
    step = min(3.2, 15.0 / len(nodes))   # the boxes and the loss fit the text width (17 cm)
    lines = [r"\begin{center}\begin{tikzpicture}[box/.style={draw,rounded corners,minimum width=%.1fcm,"
             r"minimum height=0.9cm}]" % min(1.6, step / 2)]
    for k, name in enumerate(nodes):
        lines.append(rf"\node[box] (n{k}) at ({step * k:.2f},0) {{${name}$}};")
    lines.append(rf"\node[box] (loss) at ({step * len(nodes):.2f},0) {{$L$}};")
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
    returned = r", \allowbreak ".join(b.returns)   # a long tuple may break after a comma
    lines = [r"\begin{algorithmic}", r"    \Function{%s}{$%s$}" % (_tex_text(b.name), r", \allowbreak ".join(b.arguments)),
             *(r"        \State $%s \gets %s$" % row for row in b.rows),
             r"        \State \Return $%s$" % (f"({returned})" if len(b.returns) > 1 else returned),
             r"    \EndFunction", r"\end{algorithmic}"]
    return "\n".join(lines)


def _beside(rows, gap):
    """\fitbeside the widest lhs with its relation, and the widest note `gap` apart: what a row's result may fill."""
    lhs = max((lhs for lhs, rhs, *_ in rows if rhs), key=width, default="")   # a row of lhs alone fills the line
    note = max((note for _, _, note, *_ in rows), key=len)
    return r"\fitbeside{$\displaystyle %s = $%s}" % (lhs, gap % _tex_text(note))


def _summary(b):
    """The summary: a box of rows lhs = rhs (its note at the right) that breaks across pages, closed on each."""
    rows = " \\\\\n".join(r"\padded{$\displaystyle %s$} & \padded{\fitmath{%s}} & %s" % (
        lhs, rhs, r"\rulename{%s}\quad" % _tex_text(note) if note else "") for lhs, rhs, note in b.rows)
    return (_beside(b.rows, r"\hspace{4em}\rulename{%s}") + "\n"
            + "\\begin{longtable}{|@{\\quad}r@{${}={}$}l@{\\quad}l@{}|}\n\\hline\\endhead\n\\hline\\endfoot\n"
            + rows + " \\\\\n\\end{longtable}")


def _equations(b):
    """Rows lhs = rhs (or lhs alone) with their notes, in align (numbered) or align*, each result at most as wide as
    the line leaves it."""
    env = "align" if b.numbered else "align*"
    rows = []
    for lhs, rhs, note, *relation in b.rows:
        row = rf"{lhs} &{relation[0] if relation else '='} \fitmath{{{rhs}}}" if rhs else rf"& \fitmath{{{lhs}}}"
        rows.append(row + (r" && \text{%s}" % _tex_text(note) if note else ""))
    gap = r"\qquad\text{%s}" + (r"\qquad(99)" if b.numbered else "")
    return _beside(b.rows, gap) + f"\n\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}"


def _symbols(b):
    """The symbols as a table that breaks across pages: symbol, its shape, its meaning (wrapped)."""
    return ("\\begin{longtable}[l]{@{}l@{\\ }l@{\\quad}p{0.62\\linewidth}@{}}\n"
            + " \\\\\n".join(r"$%s$ & $\in %s$ & %s" % (tex, shape, _tex_text(meaning))
                             for tex, shape, meaning in b.rows) + " \\\\\n\\end{longtable}\n")


def to_latex(title, blocks, paper="a4"):
    """A standalone LaTeX document (article, amsmath, portrait A4 or letter; compiles with pdflatex)."""
    out = [_PREAMBLE % {"paper": paper, "margin": MARGIN}, r"\section*{%s}" % _tex_text(title)]
    def introduces(k):
        """The lines block k needs on its page: a sentence with the display it introduces (its first six rows), an
        algorithm of at most 40 statements whole (a statement may take two lines: a longer one breaks); or 0."""
        if k < len(blocks) - 1 and isinstance(blocks[k], Text) and isinstance(blocks[k + 1], Equations):
            return 2 + 2 * min(len(blocks[k + 1].rows), 6)
        if k < len(blocks) and isinstance(blocks[k], Algorithm) and len(blocks[k].rows) <= 40:
            return len(blocks[k].rows) + 4
        return 0

    for k, b in enumerate(blocks):
        if introduces(k) and not (k and isinstance(blocks[k - 1], Heading)):
            out.append(r"\needspace{%d\baselineskip}" % introduces(k))   # the sentence stays with its display
        if isinstance(b, Heading):
            # a heading stays with what follows it: 8 lines, or what the block after it needs
            out.append(r"\needspace{%d\baselineskip}\subsection*{%s}" % (max(8, 2 + introduces(k + 1)),
                                                                          _tex_text(b.text)))
        elif isinstance(b, ChainBlock):
            out.append(_chain(b))
        elif isinstance(b, Summary):
            out.append(_summary(b))
        elif isinstance(b, Trace):
            out.append("\n\n".join(r"\rulename{%s}: $%s %s %s$" % (_tex_text(rule), before, rel, after)
                                     for rule, before, rel, after in b.rows) + "\n")
        elif isinstance(b, Text):
            out.append("".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.parts) + "\n")
        elif isinstance(b, Equations):
            out.append(_equations(b))
        elif isinstance(b, Symbols):
            out.append(_symbols(b))
        elif isinstance(b, Rules):
            out.append("\\begin{tabular}{@{}l@{\\quad}l@{}}\n" + " \\\\\n".join(
                r"%s: & $%s$" % (_tex_text(name), tex) for name, tex in b.rows) + "\n\\end{tabular}\n")
        elif isinstance(b, Algorithm):
            out.append(_algorithmic(b))
        elif isinstance(b, Diagram):
            out.append(_tikz(b))
        else:   # never a block left out of the document
            raise DocumentError(f"no LaTeX for a block of kind {type(b).__name__}")
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


_SUPERSCRIPT = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁻ᴸˡ", "0123456789()-Ll"))
_SYMBOLS = {"δ": r"\delta", "σ": r"\sigma", "λ": r"\lambda", "Σ": r"\Sigma", "Θ": r"\Theta", "Δ": r"\Delta",
            "∂": r"\partial", "⊙": r"\odot", "⊘": r"\oslash", "ᵀ": r"^\top", "½": r"\tfrac12", "…": r"\ldots",
            "⋯": r"\cdots", "‖": r"\|", "≈": r"\approx", "→": r"\to", "−": "-", "∘": r"\circ",
            **{chr(0x2080 + k): "_{%d}" % k for k in range(10)}}


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


def pdflatex(tex_path, warnings=None):
    """Compile tex_path next to itself with pdflatex (again while the log asks, at most three times: a table that
    breaks across pages learns its columns' widths from the run before); returns the PDF path, or None when no TeX is
    installed. `warnings`, a list, receives what the last log reports about the layout: overfull boxes (horizontal
    or vertical) and missing characters."""
    if shutil.which("pdflatex") is None:
        return None
    tex_path = Path(tex_path)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={tmp}",
                                  str(tex_path.resolve())], capture_output=True, text=True, timeout=300)
            pdf = Path(tmp) / (tex_path.stem + ".pdf")
            if run.returncode != 0 or not pdf.exists():
                raise DocumentError(f"pdflatex failed on {tex_path}:\n{run.stdout[-3000:]}")
            log = (Path(tmp) / (tex_path.stem + ".log")).read_text(encoding="latin-1")
            if "Rerun LaTeX" not in log:
                break
        if warnings is not None:
            warnings += [line for line in log.splitlines() if line.startswith(("Overfull \\hbox", "Overfull \\vbox"))
                         or "Missing character" in line]
        target = tex_path.with_suffix(".pdf")
        shutil.copyfile(pdf, target)
    return target
