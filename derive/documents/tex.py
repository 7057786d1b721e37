"""Blocks typeset as a standalone LaTeX article (amsmath, TikZ, algpseudocode), and compiled with pdflatex."""
import os
import shutil
import subprocess
import tempfile
from itertools import zip_longest
from pathlib import Path

from ..errors import DocumentError
from .blocks import grouped, width
from .blocks import Algorithm, ChainBlock, Definitions, Diagram, Equations, Heading, Rules, Summary, Symbols, Text, Trace

# paper -> (width, height) in cm; the text area is MARGINS cm inside the left and right, top, bottom edges (the page
# number FOOT cm under the text area)
PAPERS = {"a4": (21.0, 29.7), "letter": (21.59, 27.94)}
MARGINS = {"side": 2, "top": 1.6, "bottom": 2}
FOOT = .8


def text_area(paper="a4"):
    """The text area the preamble's geometry sets, (left, top, right, bottom) in PostScript points from the page's
    top left corner (the coordinates of pdftotext -bbox)."""
    width, height = PAPERS[paper]
    point = 72 / 2.54   # big points per cm
    side, top, bottom = MARGINS["side"], MARGINS["top"], MARGINS["bottom"]
    return side * point, top * point, (width - side) * point, (height - bottom) * point


_PREAMBLE = r"""\documentclass[10pt]{article}
\usepackage[%(paper)spaper,hmargin=%(side)gcm,top=%(top)gcm,bottom=%(bottom)gcm,footskip=%(foot)gcm]{geometry}
\usepackage{amsmath,amssymb}
%% the same .tex, the same PDF: no document ID from the output path (pdfTeX; dates from SOURCE_DATE_EPOCH)
\ifdefined\pdftrailerid\pdftrailerid{}\fi
\usepackage{tikz}
\usepackage{algpseudocode}
\usepackage{longtable,array,graphicx}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\emergencystretch}{3em}
%% a handout's spacing: rows of a display 1.5pt apart, displays and run-in headings closer to the text
\setlength{\jot}{1.5pt}
\AtBeginDocument{\setlength{\abovedisplayskip}{4pt plus 2pt minus 1pt}\setlength{\belowdisplayskip}{4pt plus 2pt minus 1pt}}
\newcommand{\rulename}[1]{\text{\footnotesize\itshape #1}}
%% a heading starts a new page unless #1 of space is left under it (needspace's test, without the package)
\makeatletter
\renewcommand\paragraph{\@startsection{paragraph}{4}{\z@}{1.2ex \@plus.3ex \@minus.2ex}{-1em}{\normalfont\normalsize\bfseries}}
\newcommand{\needspace}[1]{\par\penalty-100\begingroup\setlength{\dimen@}{#1}\dimen@ii\pagegoal
  \advance\dimen@ii-\pagetotal\ifdim\dimen@>\dimen@ii\ifdim\dimen@ii>\z@\vfil\fi\break\fi\endgroup}
%% \fitmath{x}: x in display style, scaled down to \fitwidth where wider (a result wider than the page)
\newlength{\fitwidth}
\newlength{\fitright}
\newlength{\fitfull}
\newlength{\fitleft}
%% \fitto{w}{x}: x, scaled down to w where wider
\newcommand{\fitto}[2]{\sbox\z@{#2}\ifdim\wd\z@>#1\resizebox{#1}{!}{\usebox\z@}\else\usebox\z@\fi}
\newcommand{\fitmath}[1]{\fitto{\fitwidth}{$\displaystyle #1$}}
%% \fitafter{x}{y}: y in display style, scaled down to what \fitwidth leaves beside x (a result beside its ⇒ lhs =)
\newcommand{\fitafter}[2]{\settowidth{\fitleft}{$\displaystyle #1$}%%
  \setlength{\fitleft}{\dimexpr\fitwidth-\fitleft\relax}\fitto{\fitleft}{$\displaystyle #2$}}
%% \fitbeside{x}: \fitwidth is what a line leaves beside x
%% (globally: a chain's first row sets it for the rows after it in its align*)
\newcommand{\fitbeside}[1]{\settowidth{\fitwidth}{#1}\global\fitwidth=\dimexpr\linewidth-\fitwidth\relax}
%% \widen{\len}{x}: \len grows to x's width; \meaningwidth: the width left to a definition's meaning
\newlength{\widest}
\newlength{\widestlhs}
\newlength{\widestshape}
\newlength{\meaningwidth}
\newcommand{\widen}[2]{\settowidth{\dimen@}{#2}\ifdim\dimen@>#1\setlength{#1}{\dimen@}\fi}
%% \padded{x}: x with half \jot more above and below it (a table's rows of fractions \jot apart, as in align)
\newcommand{\padded}[1]{\raisebox{\z@}[\dimexpr\height+.5\jot][\dimexpr\depth+.5\jot]{#1}}
\makeatother
%% a table breaks across pages: a summary's box is closed at the foot of each page and opened at the head of the next
\setlength{\LTpre}{\medskipamount}
\setlength{\LTpost}{\medskipamount}
\begin{document}
"""

# a chain's lhs wider than this (width()) has a line of its own, the rows = … under it
WIDE_LHS = 24


def _chain_rows(b):
    """A chain's align* rows: lhs = row 1 (rules at the right) = row 2 …; then ⇒ each result. A wide lhs stands on a
    line of its own, 2em left of the rows."""
    wide = width(b.lhs) > WIDE_LHS
    rows = [(r"&\hspace{-2em} %s" % b.lhs, "", width(b.lhs))] if wide else []   # (LaTeX, rules, width)
    for k, (lines, rules) in enumerate(b.rows):
        rows.append((rf"{b.lhs if k == 0 and not wide else ''} &= \fitmath{{{lines[0]}}}", rules if len(lines) == 1
                     else "", width(lines[0])))
        rows += [(rf"&\phantom{{=}} \fitmath{{{line}}}", rules if j == len(lines) - 1 else "", width(line))
                 for j, line in enumerate(lines[1:], 1)]
    for lhs, rhs in b.results:
        first, *more = (rhs,) if isinstance(rhs, str) else rhs   # a wide result: its factors on lines of their own
        rows.append((r"&\Rightarrow\ %s = \fitafter{\Rightarrow\ %s = {}}{%s}" % (lhs, lhs, first), "",
                     width(lhs) + width(first)))
        rows += [(r"&\phantom{\Rightarrow\ %s =} \fitafter{\Rightarrow\ %s = {}}{%s}" % (lhs, lhs, line), "",
                  width(lhs) + width(line)) for line in more]
    return [tex + _tag(rules, k + 1 < len(rows) and not rows[k + 1][1] and rows[k + 1][2] <= SHORT_ROW)
            for k, (tex, rules, _) in enumerate(rows)]


# a row's rules longer than this (characters) are set in two lines where the row under it is short and has none
STACKED_RULES = 30
# a row no wider than this (width()) leaves the right of its line free for the rules of the row above
SHORT_ROW = 40


def _tag(rules, room_below):
    """A row's rules at its right; long ones in two lines, the second over the free right end of the row below
    (smashed: the row keeps its height), so that they need not move to a line of their own."""
    if not rules:
        return ""
    if len(rules) <= STACKED_RULES or not room_below or ", " not in rules:
        return r" \tag*{$\rulename{%s}$}" % _tex_text(rules)
    names = rules.split(", ")
    cut = min(range(1, len(names)), key=lambda k: abs(len(", ".join(names[:k])) - len(rules) / 2))
    first, second = ", ".join(names[:cut]) + ",", ", ".join(names[cut:])
    return (r" \tag*{\smash[b]{$\rulename{\begin{tabular}[t]{@{}r@{}}%s\\ %s\end{tabular}}$}}"
            % (_tex_text(first), _tex_text(second)))


def _parts_tex(parts):
    return "".join(_tex_text(s) if kind == "text" else r"\texttt{%s}" % _tex_text(s).replace("--", "-{}-")
                   if kind == "code" else f"${s}$" for kind, s in parts)


def _fit(b):
    """\\fitbeside a chain's lhs =: what each of its lines may fill (a result what its ⇒ lhs = leaves of that)."""
    lhs = "" if width(b.lhs) > WIDE_LHS else b.lhs   # on a line of its own
    # "= {}": the space after a relation, which a trailing "=" would not measure
    return r"\fitbeside{$\displaystyle %s = {}$}" % lhs


def _chains(group):
    """Chains of one part (a block's, a head's) under its first title: one align* while no remark intervenes, each
    later chain's note said between them where it is not the one before's; each chain's lines as wide as its own lhs
    and ⇒ lhs = leave them."""
    first = group[0]
    out = [r"\needspace{6\baselineskip}\paragraph{%s}%s" % (
        _parts_tex(first.title), f" ({_parts_tex(first.note)})" if first.note else "")]
    body, note = "", first.note
    for k, b in enumerate(group):
        if body:   # the chain before ends its row: the next starts after half a line, or after its note
            said = b.note and note[:len(b.note)] != b.note   # "for h = 1, 2" was said with the first chain's note
            body += (" \\\\\n\\intertext{(%s)}\n" % _parts_tex(b.note) if said
                     else " \\\\[.25\\baselineskip]\n")
        note = b.note or note
        body += _fit(b) + " \\\\\n".join(_chain_rows(b))
        if b.remark or k == len(group) - 1:   # a remark ends the display: the next chain opens another
            out.append("\\begin{align*}\n" + body + "\n\\end{align*}")
            out.append(f"{_parts_tex(b.remark)}\n" if b.remark else "")
            body = ""
    return "\n".join(o for o in out if o)


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
    lines.append(r"Solid: forward values $A^{(l)}$; dashed: errors $\delta^{(l)}$ flowing back"
                 + (r"; each $\partial L/\partial W^{(l)}$ combines $A^{(l-1)}$ with $\delta^{(l)}$." if diagram.hint
                    else "."))
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
    return r"\fitbeside{$\displaystyle %s = {}$%s}" % (lhs, gap % _tex_text(note))


def _summary(b):
    """The summary: a box of rows lhs = rhs (its note at the right) that breaks across pages, closed on each; the
    rows two a line, read across, where it has two columns."""
    if b.columns == 2 and len(b.rows) > 1:
        return _two_columns(b.rows)
    rows = " \\\\\n".join(r"\padded{$\displaystyle %s$} & \padded{\fitmath{%s}} & %s" % (
        lhs, rhs, r"\rulename{%s}\quad" % _tex_text(note) if note else "") for lhs, rhs, note in b.rows)
    return (_beside(b.rows, r"\hspace{4em}\rulename{%s}") + "\n"
            + "\\begin{longtable}{|@{\\quad}r@{${}={}$}l@{\\quad}l@{}|}\n\\hline\\endhead\n\\hline\\endfoot\n"
            + rows + " \\\\\n\\end{longtable}")


# of the line, what each column of a two-column summary may fill
HALF = .48
# a summary row wider than this (width() of its note, lhs and rhs) has a line of its own
HALF_WIDTH = 34


def _two_columns(rows):
    """A boxed summary read across: rows lhs = rhs, two a line where both are narrow, a wide one on a line of its
    own, in order (a page break keeps it); a note ("for h = 1, 2") before its row's lhs."""
    def lhs_of(row):
        lhs, _, note = row
        return (r"\rulename{%s}\quad " % _tex_text(note) if note else "") + r"\padded{$\displaystyle %s$}" % lhs

    def cells(row, fit):
        if row is None:   # no row here: no = either (the box's right edge kept)
            return r"\multicolumn{2}{l@{\quad}|}{}"
        return r"%s & \padded{\fitto{%s}{$\displaystyle %s$}}" % (lhs_of(row), fit, row[1])

    def gradient(row):   # the gradients start a line of their own, after the last δ
        return row[0].startswith(r"\partial")

    def wide(row):
        lhs, rhs, note = row
        return width(lhs) + width(rhs) + len(note) // 2 > HALF_WIDTH

    lines, k = [], 0
    while k < len(rows):
        if wide(rows[k]):
            lhs, rhs, note = rows[k]
            lines.append(r"\multicolumn{4}{|@{\quad}l@{\quad}|}{%s${}={}$\padded{\fitto{\fitfull}{$\displaystyle %s$}}}"
                         % (lhs_of(rows[k]), rhs))
            k += 1
        elif k + 1 < len(rows) and not wide(rows[k + 1]) and gradient(rows[k]) == gradient(rows[k + 1]):
            lines.append(cells(rows[k], r"\fitwidth") + " & " + cells(rows[k + 1], r"\fitright"))
            k += 2
        else:
            lines.append(cells(rows[k], r"\fitwidth") + " & " + cells(None, r"\fitright"))
            k += 1
    # what a result may fill: half the line beside the widest lhs of its column (all of it for a row of its own)
    paired = [r for r in rows if not wide(r)]
    left = max((lhs_of(r) for r in paired[0::2]), key=width, default="")
    right = max((lhs_of(r) for r in paired[1::2]), key=width, default="")
    measure = (r"\setlength{\fitfull}{\dimexpr\linewidth-4em\relax}"
               r"\settowidth{\fitwidth}{%s$\displaystyle {}={}$\quad}"
               r"\setlength{\fitwidth}{\dimexpr%s\linewidth-\fitwidth\relax}"
               r"\settowidth{\fitright}{%s$\displaystyle {}={}$\quad\quad}"
               r"\setlength{\fitright}{\dimexpr%s\linewidth-\fitright\relax}" % (left, HALF, right, HALF))
    return (measure + "\n\\begin{longtable}{|@{\\quad}r@{${}={}$}l@{\\qquad}r@{${}={}$}l@{\\quad}|}\n"
            "\\hline\\endhead\n\\hline\\endfoot\n" + " \\\\\n".join(lines) + " \\\\\n\\end{longtable}")


# a rule's statement at most this wide (width()) fits in half the line beside the longest name
NARROW = 17


def _rules(b):
    """The rules as tables of name: statement, the narrow ones in two columns side by side (the first half of them
    left), then the wide ones."""
    def table(rows):
        return ("\\begin{tabular}[t]{@{}l@{\\quad}l@{}}\n"
                + " \\\\\n".join(r"%s: & $%s$" % (_tex_text(name), tex) for name, tex in rows) + "\n\\end{tabular}")
    narrow = [r for r in b.rows if width(r[1]) <= NARROW]
    wide = [r for r in b.rows if r not in narrow]
    half = (len(narrow) + 1) // 2
    out = []
    if len(narrow) > 1:
        out.append("\\noindent\\fitto{\\linewidth}{%s\\hspace{3em}%s}\n"
                   % (table(narrow[:half]), table(narrow[half:])))
    else:
        wide = list(b.rows)
    # a wide one is a paragraph of its own, its statement broken where the line ends
    out += ["\n\\par\\noindent\\hangindent=2em %s: $%s$" % (_tex_text(name), tex) for name, tex in wide]
    return "".join(out) + ("\n" if wide else "")


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


def _definitions(b):
    """The definitions as a table that breaks across pages: lhs = rhs, its shape, its meaning wrapped in what the
    widest of each column leave (at least a third of the line; a wider rhs is scaled down to fit beside it)."""
    measured = "".join(r"\widen{\widestlhs}{$\displaystyle %s{}={}$}\widen{\widest}{$\displaystyle %s$}"
                       r"\widen{\widestshape}{$\in %s$}" % (lhs, rhs, shape) + "\n" for lhs, rhs, shape, _ in b.rows)
    rows = " \\\\\n".join(r"\padded{$\displaystyle %s$} & \padded{\fitmath{%s}} & $\in %s$ & %s"
                            % (lhs, rhs, shape, _tex_text(meaning)) for lhs, rhs, shape, meaning in b.rows)
    return ("\\setlength{\\widestlhs}{0pt}\\setlength{\\widest}{0pt}\\setlength{\\widestshape}{0pt}\n" + measured
            # the meaning: what the columns leave, or a third of the line; the rhs: what the others leave it
            + "\\setlength{\\meaningwidth}{\\dimexpr\\linewidth-\\widestlhs-\\widest-\\widestshape-2em\\relax}"
              "\\ifdim\\meaningwidth<.34\\linewidth\\setlength{\\meaningwidth}{.34\\linewidth}\\fi\n"
              "\\global\\fitwidth=\\dimexpr\\linewidth-\\widestlhs-\\widestshape-2em-\\meaningwidth\\relax\n"
            + "\\begin{longtable}[l]{@{}r@{${}={}$}l@{\\quad}l@{\\quad}p{\\meaningwidth}@{}}\n"
            + rows + " \\\\\n\\end{longtable}\n")


def to_latex(title, blocks, paper="a4"):
    """A standalone LaTeX document (article, amsmath, portrait A4 or letter; compiles with pdflatex)."""
    out = [_PREAMBLE % {"paper": paper, **MARGINS, "foot": FOOT}, r"\section*{%s}" % _tex_text(title)]
    blocks = grouped(blocks)
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
        elif isinstance(b, list):
            out.append(_chains(b))
        elif isinstance(b, Summary):
            out.append(_summary(b))
        elif isinstance(b, Trace):
            out.append("\n\n".join(r"\rulename{%s}: $%s %s %s$" % (_tex_text(rule), before, rel, after)
                                     for rule, before, rel, after in b.rows) + "\n")
        elif isinstance(b, Text):
            out.append(_parts_tex(b.parts) + "\n")
        elif isinstance(b, Equations):
            out.append(_equations(b))
        elif isinstance(b, Symbols):
            out.append(_symbols(b))
        elif isinstance(b, Definitions):
            out.append(_definitions(b))
        elif isinstance(b, Rules):
            out.append(_rules(b))
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
            "⋯": r"\cdots", "‖": r"\|", "≈": r"\approx", "→": r"\to", "−": "-", "∘": r"\circ", "×": r"\times",
            "·": r"\cdot", "≤": r"\le", "≥": r"\ge",
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


# the same .tex gives the same PDF bytes: pdfTeX's dates from a fixed time, not the clock
REPRODUCIBLE = {"SOURCE_DATE_EPOCH": "0", "FORCE_SOURCE_DATE": "1"}


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
                                  str(tex_path.resolve())], capture_output=True, text=True, timeout=300,
                                 env={**os.environ, **REPRODUCIBLE})
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
