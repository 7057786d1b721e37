"""Blocks typeset as a standalone LaTeX article (amsmath, TikZ, algpseudocode), and compiled with pdflatex."""
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import DocumentError
from .blocks import Algorithm, ChainBlock, Diagram, Equations, Heading, Rules, Summary, Symbols, Text, Trace

PAPERS = ("a4", "letter")

_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[%spaper,margin=2cm]{geometry}
\usepackage{amsmath,amssymb}
\usepackage{tikz}
\usepackage{algpseudocode}
\allowdisplaybreaks[1]
\setlength{\parindent}{0pt}
\setlength{\emergencystretch}{3em}
\newcommand{\rulename}[1]{\text{\footnotesize\itshape #1}}
%% a heading starts a new page unless #1 of space is left under it (needspace's test, without the package)
\makeatletter
\newcommand{\needspace}[1]{\par\penalty-100\begingroup\setlength{\dimen@}{#1}\dimen@ii\pagegoal
  \advance\dimen@ii-\pagetotal\ifdim\dimen@>\dimen@ii\ifdim\dimen@ii>\z@\vfil\fi\break\fi\endgroup}
\makeatother
\begin{document}
"""

def _chain(b):
    """A chain as one align*: lhs = row 1 (rules at the right) = row 2 …; then ⇒ each result."""
    rows = []
    for k, (lines, rules) in enumerate(b.rows):
        tag = r" \tag*{$\rulename{%s}$}" % _tex_text(rules) if rules else ""
        rows.append(f"{b.lhs if k == 0 else ''} &= {lines[0]}" + (tag if len(lines) == 1 else ""))
        for j, line in enumerate(lines[1:], 1):
            rows.append(rf"&\phantom{{=}} {line}" + (tag if j == len(lines) - 1 else ""))
    for lhs, rhs in b.results:
        first, *more = (rhs,) if isinstance(rhs, str) else rhs   # a wide result: its factors on lines of their own
        rows.append(r"&\Rightarrow\ %s = %s" % (lhs, first))
        rows += [r"&\phantom{\Rightarrow\ %s =} %s" % (lhs, line) for line in more]
    title = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.title)
    note = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.note)
    remark = "".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.remark)
    return (r"\needspace{6\baselineskip}\paragraph{%s}%s" % (title, f" ({note})" if note else "")
            + "\n\\begin{align*}\n"
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
    if len(b.rows) <= 40:   # on one page, unless it is longer than one
        lines = [r"\noindent\begin{minipage}{\linewidth}", *lines, r"\end{minipage}\par\medskip"]
    return "\n".join(lines)


def to_latex(title, blocks, paper="a4"):
    """A standalone LaTeX document (article, amsmath, portrait A4 or letter; compiles with pdflatex)."""
    out = [_PREAMBLE % paper, r"\section*{%s}" % _tex_text(title)]
    def introduces(k):
        """The lines a sentence at k needs with the display it introduces (its first six rows), or 0."""
        if k < len(blocks) - 1 and isinstance(blocks[k], Text) and isinstance(blocks[k + 1], Equations):
            return 2 + 2 * min(len(blocks[k + 1].rows), 6)
        return 0

    for k, b in enumerate(blocks):
        if introduces(k) and not (k and isinstance(blocks[k - 1], Heading)):
            out.append(r"\needspace{%d\baselineskip}" % introduces(k))   # the sentence stays with its display
        if isinstance(b, Heading):
            # a heading stays with what follows it: 8 lines, or a sentence and the display it introduces
            out.append(r"\needspace{%d\baselineskip}\subsection*{%s}" % (max(8, 2 + introduces(k + 1)),
                                                                          _tex_text(b.text)))
        elif isinstance(b, ChainBlock):
            out.append(_chain(b))
        elif isinstance(b, Summary):
            rows = " \\\\\n".join(f"{lhs} &= {rhs}" + (r" &&\rulename{%s}" % _tex_text(note) if note else "")
                                   for lhs, rhs, note in b.rows)
            out.append("\\begin{center}\\fbox{$\\displaystyle\\begin{aligned}\n" + rows
                       + "\n\\end{aligned}$}\\end{center}")
        elif isinstance(b, Trace):
            out.append("\n\n".join(r"\rulename{%s}: $%s %s %s$" % (_tex_text(rule), before, rel, after)
                                     for rule, before, rel, after in b.rows) + "\n")
        elif isinstance(b, Text):
            out.append("".join(_tex_text(s) if kind == "text" else f"${s}$" for kind, s in b.parts) + "\n")
        elif isinstance(b, Equations):
            env = "align" if b.numbered else "align*"
            rows = []
            for lhs, rhs, note, *relation in b.rows:
                row = f"{lhs} &{relation[0] if relation else '='} {rhs}" if rhs else f"& {lhs}"
                rows.append(row + (r" && \text{%s}" % _tex_text(note) if note else ""))
            out.append(f"\\begin{{{env}}}\n" + " \\\\\n".join(rows) + f"\n\\end{{{env}}}")
        elif isinstance(b, Symbols):
            out.append("\\begin{tabular}{@{}l@{\\ }l@{\\quad}p{0.62\\linewidth}@{}}\n" + " \\\\\n".join(r"$%s$ & $\in %s$ & %s" % (tex, shape, _tex_text(meaning))
                                                           for tex, shape, meaning in b.rows)
                       + "\n\\end{tabular}\n\n\\medskip\n")
        elif isinstance(b, Rules):
            out.append("\\begin{tabular}{@{}l@{\\quad}l@{}}\n" + " \\\\\n".join(
                r"%s: & $%s$" % (_tex_text(name), tex) for name, tex in b.rows) + "\n\\end{tabular}\n")
        elif isinstance(b, Algorithm):
            out.append(_algorithmic(b))
        elif isinstance(b, Diagram):
            out.append(_tikz(b))
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
    """Compile tex_path next to itself with pdflatex; returns the PDF path, or None when no TeX is installed.
    `warnings`, a list, receives what the log reports about the layout: overfull boxes and missing characters."""
    if shutil.which("pdflatex") is None:
        return None
    tex_path = Path(tex_path)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"-output-directory={tmp}",
                              str(tex_path.resolve())], capture_output=True, text=True, timeout=300)
        pdf = Path(tmp) / (tex_path.stem + ".pdf")
        if run.returncode != 0 or not pdf.exists():
            raise DocumentError(f"pdflatex failed on {tex_path}:\n{run.stdout[-3000:]}")
        if warnings is not None:
            log = (Path(tmp) / (tex_path.stem + ".log")).read_text(encoding="latin-1")
            warnings += [line for line in log.splitlines() if line.startswith("Overfull \\hbox")
                         or "Missing character" in line]
        target = tex_path.with_suffix(".pdf")
        shutil.copyfile(pdf, target)
    return target
