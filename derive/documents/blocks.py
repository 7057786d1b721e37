"""Derivation documents as data: blocks (headings, text, equations, rules, symbols, algorithm, diagram) built from a
result."""
import re
from collections import Counter
from dataclasses import dataclass

import sympy as sp

from ..codegen import helpers
from ..core.rules import IDENTITIES
from ..codegen import program as codegen
from ..networks.forms import diag_form, index_form
from ..networks.network import generic_size, generic_symbols
from ..core.expr import Select
from ..networks import views_convolution, views_recurrent
from ..networks.blocks import SIZE, flatten
from ..networks.textbook import (block_chains, carried, is_generic, is_scalar, layer_range, scalar_chain,
                                 textbook)
from ..networks.views_attention import generic_meanings, written
from ..printing.latex import LatexPrinter, Notation, latex, where_as_cases
from ..errors import InvalidArgument

# the sections a user may switch: the index form (and the diagonal form, for one sample), the typeset algorithm
SECTIONS = ("index", "algorithm")


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Text:
    """A paragraph: plain text, inline math and code, as [("text", s) | ("math", tex) | ("code", s)]."""

    parts: tuple


@dataclass(frozen=True)
class Equations:
    """Aligned rows lhs = rhs, each with an optional note (the rule it applies); numbered or not."""

    rows: tuple  # (lhs, rhs, note) or (lhs, rhs, note, relation): lhs = rhs, or lhs ⇒ rhs
    numbered: bool = False


@dataclass(frozen=True)
class Rules:
    """The rules a derivation uses: (name, statement in LaTeX)."""

    rows: tuple


@dataclass(frozen=True)
class Symbols:
    """The symbols of a network with their shapes and meanings: (LaTeX, shape in LaTeX, meaning)."""

    rows: tuple


@dataclass(frozen=True)
class Definitions:
    """The forward pass as a table: each matrix = its definition, with its shape and meaning (LaTeX, LaTeX, LaTeX,
    text)."""

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
class ChainBlock:
    """One chain lhs = row 1 = row 2 = …: each row the LaTeX of its terms and the rules it cites; then the results
    read off it (lhs, rhs in LaTeX)."""

    title: tuple     # parts as in Text
    lhs: str
    rows: tuple      # (lines: LaTeX of the terms, one line or a term per line when too wide, rules: str)
    results: tuple   # (lhs, rhs)
    note: tuple = ()  # parts as in Text, after the title
    remark: tuple = ()  # parts as in Text, after the results


@dataclass(frozen=True)
class Summary:
    """The boxed summary: the δ recursion and every gradient, (lhs, rhs, note) in LaTeX, in `columns` columns (2: two
    rows a line, read across, where the page is narrow)."""

    rows: tuple
    columns: int = 1


@dataclass(frozen=True)
class Trace:
    """The full step log, one paragraph per step: (rule, before, relation, after) in LaTeX."""

    rows: tuple


@dataclass(frozen=True)
class Diagram:
    """The network's forward and backward flow: values X, A^(1)…A^(L); W^(l) and δ^(l) between them."""

    values: tuple   # LaTeX of X, A^(1), …, A^(L)
    weights: tuple  # LaTeX of W^(1), …, W^(L)
    deltas: tuple   # LaTeX of δ^(1), …, δ^(L)
    hint: bool = True   # the caption says how a gradient combines the flows (not on a problem sheet)


def grouped(blocks):
    """The blocks with each run of chains of one part (a block's, a head's: their titles' words before the δ agree)
    as one list."""
    out = []
    for b in blocks:
        part = b.title[0] if isinstance(b, ChainBlock) and b.title[0][0] == "text" else None
        if part is not None and part[1].endswith(": from ") and out and isinstance(out[-1], list) \
                and out[-1][0].title[0] == part:
            out[-1].append(b)
        else:
            out.append([b] if isinstance(b, ChainBlock) else b)
    return out


def _cited(chains, slopes):
    """The rules the chains cite, but for the activations' derivatives, which the document states with their
    definitions."""
    stated = {f"derivative of {slope.name}" for slope in slopes}
    return dict.fromkeys(r for c in chains for line in c.lines for r in line.rules if r.name not in stated)


def _rules(rules):
    """The rules' statements, each name once (the sum rule of matrices and of scalars is one rule)."""
    named = {}
    for r in rules:
        named.setdefault(r.name, (r.name, r.latex))
    return Rules(tuple(named.values()))


LOSS_WORDS = {"bce": "binary cross-entropy", "half_sse": "half the squared error", "mse": "mean squared error",
              "softmax_ce": "cross-entropy", "sse": "squared error"}


def network_words(net, n):
    """The network in a sentence (Text parts): sizes, activations, loss and reduction in words."""
    if not net.dense_chain():
        return _block_words(net, n)
    acts = [layer.activation.name for layer in net.layers]
    kinds = ", ".join(dict.fromkeys(acts[:-1]))
    hidden = (f"{kinds} hidden layers, " if len(acts) > 2 else f"a {kinds} hidden layer, " if len(acts) > 1 else "")
    loss = LOSS_WORDS.get(net.loss_name, net.loss_name)
    how = "summed over" if net.reduction == "sum" else "averaged over"
    samples = (("text", "for one sample"),) if net.m == 1 else (("text", f"{how} the "), ("math", latex(net.m, n)),
                                                                  ("text", " samples"))
    sizes = r" \to ".join(latex(k, n) for k in net.sizes)
    by = "row" if net.layout == "AW" else "column"
    parts = [("text", "A "), ("math", sizes), ("text", f" network with {hidden}a {acts[-1]} output layer and {loss} "),
             *samples]
    if net.weight_decay != 0:
        parts += [("text", ", plus weight decay "),
                  ("math", r"\tfrac{%s}{2} \sum_l \|W^{(l)}\|_F^2" % latex(net.weight_decay, n))]
    parts += [("text", f"; one sample per {by} of "), ("math", "X")]
    if net.layout == "WtA":
        # seed 004's convention: W holds one column per unit
        parts += [("text", ", and "), ("math", "W^{(l)}"), ("text", " holds one column per unit (so "),
                  ("math", r"Z^{(l)} = {W^{(l)}}^{\top} A^{(l-1)} + \dots"), ("text", ", with "),
                  ("math", r"A^{(0)} = X"), ("text", ")")]
    return tuple(parts + [("text", ".")])


NOTATION = Text((("math", r"\odot"), ("text", " and "), ("math", r"\oslash"),
                 ("text", " are the entrywise product and quotient, "), ("math", r"X^{\circ 2}"),
                 ("text", " the entrywise square; σ, log and the other functions apply entry by entry; "),
                 ("math", r"\mathbf{1}"), ("text", " alone (as in "), ("math", r"\mathbf{1} - Y"),
                 ("text", ") is the all-ones matrix of the shape around it, "), ("math", r"\mathbf{1}_{k}"),
                 ("text", " the all-ones "), ("math", r"k \times 1"), ("text", " vector; "),
                 ("math", r"[z > 0]"), ("text", " is 1 where the condition holds and 0 elsewhere.")))


# a row of a chain longer than this (in characters of its LaTeX, commands counted short) puts one term per line
WIDE = 80


def width(tex):
    """About how many characters wide tex prints: commands and braces count little."""
    tex = re.sub(r"\\(mathrm|mathbf|operatorname|left|right|top|circ)\b", "", tex)
    tex = re.sub(r"\\[a-zA-Z]+", "x", tex)
    tex = re.sub(r"[{}^_]", "", tex)
    return len(tex.replace(" ", ""))


def split_terms(terms):
    """A chain row's terms joined by +, one per line (aligned after the =) when they are too wide together."""
    def join(ts):
        out = ts[0]
        for t in ts[1:]:
            out += f" - {t[1:].lstrip()}" if t.startswith("-") else f" + {t}"
        return out
    if width(join(terms)) <= WIDE or len(terms) == 1:
        return [join(terms)]
    lines = [terms[0]]
    for t in terms[1:]:
        lines.append((r"\quad - " + t[1:].lstrip()) if t.startswith("-") else r"\quad + " + t)
    return lines


def _chain_block(chain, n, function="L"):
    """A textbook Chain as a ChainBlock: its lines' terms and cited rules, its results read off."""
    rows, before = [], ()
    for k, line in enumerate(chain.lines):
        # a chain's first line writes C by its definition, as every chain does: the other rules it cites are named
        named = [r.name for r in line.rules if not (k == 0 and r.name == "definition" and len(line.rules) > 1)]
        if not line.rules and rows:   # a line no rule made only reorders terms or drops brackets: not shown
            continue
        rows.append((tuple(split_terms(_shown(line.terms, before, n))), ", ".join(named)))
        before = line.terms
    results, sums = [], {s[0]: s[1:] for s in chain.sums}
    for symbol, E, kind in chain.results:
        lhs = latex(symbol, n) if kind.startswith("delta") or kind == "form" else r"\frac{\partial %s}{\partial %s}" % (
            function, latex(symbol, n))
        if kind.endswith("contribution"):   # one term of a δ or gradient that several chains reach
            name = latex(symbol, n) if kind.startswith("delta") else r"\partial %s / \partial %s" % (
                function, latex(symbol, n))
            lhs = r"\text{contribution to } %s \text{ through } %s" % (name, latex(chain.via, n))
        elif symbol in sums:   # Σ over a generic step's terms
            results.append((lhs, _summed(sums[symbol], E, n)))
            continue
        results.append((lhs, _wide_result(E, n, width(lhs) + width(latex(chain.lhs, n)))))
    lhs = latex(chain.lhs, n)
    if sums and all(symbol in sums and not kind.endswith("contribution") for symbol, _, kind in chain.results):
        # every result is a sum over a generic head's terms: Σ_h tr(G_hᵀ dX) = tr((Σ_h G_h)ᵀ dX), each line summed
        _, index, first, last = next(iter(sums.values()))
        opening = r"\sum\nolimits_{%s=%s}^{%s} \Big[" % (index, first, last)

        def summed(lines):   # Σ_h [ first line … last line ]
            lines = (f"{opening} {lines[0]}", *lines[1:])
            return (*lines[:-1], f"{lines[-1]} \\Big]")
        lhs = summed((lhs,))[0]
        rows = [(summed(lines), rules) for lines, rules in rows]
    title = tuple(("math", latex(p, n)) if isinstance(p, sp.Basic) else ("text", p) for p in chain.title)
    note = ()
    if chain.where:   # "for l = 5, 4, …, 1": the values of l as mathematics
        note += (("text", "for "), ("math", chain.where.removeprefix("for ").replace("…", r"\ldots")))
    if chain.note:
        note += (("text", "; "),) if note else ()
        note += tuple(("math", latex(p, n)) if isinstance(p, sp.Basic) else ("text", p) for p in chain.note)
    remark = ((("text", chain.remark),) if chain.remark else ()) if isinstance(chain.remark, str) else tuple(
        ("math", latex(p, n)) if isinstance(p, sp.Basic) else ("text", p) for p in chain.remark)
    return ChainBlock(title, lhs, tuple(rows), tuple(results), note, remark)


# a chain line wider than this leaves its rule names no room beside it: its carried terms are written ⋯
CARRIED = 50


def _wide_result(E, n, beside=0):
    """A result's LaTeX, or for a wide Hadamard product its lines: all factors but the last, then ⊙ the last."""
    tex = latex(E, n)
    if width(tex) + beside <= WIDE or not isinstance(E, sp.HadamardProduct):   # beside: the width of its "lhs ="
        return tex
    *rest, last = E.args
    head = latex(sp.HadamardProduct(*rest) if len(rest) > 1 else rest[0], n)
    if len(rest) == 1 and isinstance(rest[0], (sp.MatMul, sp.MatAdd)):
        head = f"({head})"   # as a factor of ⊙ prints it
    if isinstance(last, sp.MatAdd):   # a ⊙ (b + c + d): b, then + c, + d, each on a line of its own
        terms = [latex(t, n) for t in last.args]
        lines = [rf"{head} \odot \Big({terms[0]}"] + [
            (r"\quad - " + t[1:].lstrip()) if t.startswith("-") else r"\quad + " + t for t in terms[1:]]
        return (*lines[:-1], lines[-1] + r" \Big)")
    return (head, r"\odot " + latex(last, n))


def _shown(terms, before, n):
    """The LaTeX of a chain line's terms: where the line is too wide, the terms it carries unchanged from the line
    before written once as ⋯."""
    shown = [latex(t, n) for t in terms]
    kept = carried(terms, before)
    if kept == 0 or width(" + ".join(shown)) <= CARRIED:
        return shown
    return [r"\cdots"] + shown[kept:]


def _slopes(slopes, n):
    """σ′ of each activation written out: σ′(z) = … = … (and σ's definition first, where it has one)."""
    return Equations(tuple((lhs, rhs, "") for _, lhs, rhs in _slope_rows(slopes, n)))


def _slope_rows(slopes, n):
    """(what it states, lhs, rhs): each activation's definition where it has one, and its derivative."""
    rows = []
    for slope in slopes:
        name = latex(slope.function, n).replace("(z)", "", 1)
        if slope.definition is not None:
            rows.append((slope.name, latex(slope.function, n), latex(slope.definition, n)))
        rows.append((f"derivative of {slope.name}", r"%s^{\prime}(z)" % name,
                     " = ".join(latex(e, n) for e in slope.steps)))
    return rows


def sections_of(net, sections):
    """The sections a document of `net` shows: `sections` (names from SECTIONS), or by default the index form and the
    algorithm for a network of dense layers (as the seeds show them), neither for a network of other blocks (each
    result stated where it is derived and in the summary only)."""
    if sections is None:
        return set(SECTIONS) if net.dense_chain() else set()
    sections = (sections,) if isinstance(sections, str) else tuple(sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise InvalidArgument(f"unknown section {unknown[0]!r}; valid: {', '.join(SECTIONS)}")
    return set(sections)


def backprop_blocks(result, notation=None, detail="textbook", extra=(), sections=None):
    """Blocks for a Backprop: the network, its symbols, forward pass and loss, the rules, the derivation (one chain
    per layer, or every step for detail "full"), the boxed summary, and the `sections` (sections_of): the index form
    and the generated code."""
    n = notation or Notation()
    net = result.network
    wanted = sections_of(net, sections)
    if not net.dense_chain():
        return network_of_blocks(result, n, detail, extra, wanted)
    generic = is_generic(net)
    blocks = [Heading("Network"), Text(network_words(net, n)),
              Heading("Symbols"), *(generic_symbols_blocks(net, n) if generic else [symbols(net, n)]),
              *([] if is_scalar(net) else [NOTATION]),
              Heading("Forward pass and loss"), generic_forward(net, n) if generic else
              Equations((*((latex(Z, n), latex(E, n), "") for Z, E in result.forward.items()),
                         ("L", latex(net.loss, n), "")), numbered=True)]
    slopes, chains = textbook(result)
    if slopes:
        blocks += [Heading("Derivatives of the activations"), _slopes(slopes, n)]
    if is_scalar(net) and detail != "full":
        # every quantity a number (seed 003): the scalar chain rule, no traces or transposes of 1 × 1 matrices
        C, rows = scalar_chain(net)
        L = net.L
        cost = net.loss_entry.per_entry(sp.Symbol(f"a({L})"), sp.Symbol("y"))
        blocks += [Heading("Derivation by the scalar chain rule (every quantity is a number)"),
                   Text((("text", "Every matrix above is a single number here, written in lower case: "),
                         ("math", r"a^{(l)} = A^{(l)},\ z^{(l)} = Z^{(l)},\ w^{(l)} = W^{(l)},\ y = Y"),
                         ("text", " and "), ("math", r"a^{(0)} = x = X"), ("text", "; the cost is "),
                         ("math", f"{latex(C, n)} = {latex(cost, n)}"), ("text", " (the loss L above), and "),
                         ("math", r"\delta^{(l)} = \partial %s / \partial z^{(l)}" % latex(C, n)),
                         ("text", ". Each derivative is the product of the local derivatives along the path to it, "
                                  "from the output back:"))),
                   _scalar_rows(C, rows, n)]
        gradients = [r for r in rows if r.target.name[0] in "wb"]
        carried = [r for r in rows if r.target.name[0] == "a" and r.known is not None]   # ∂C/∂a⁽ˡ⁻¹⁾ (seed 003)
        blocks += [Heading("Summary"), Summary(tuple((_partial(C, r.target, n), latex(r.value, n), "")
                                                     for r in gradients + carried))]
    elif detail == "full":
        blocks += [Heading("Rules used"), _rules(result.rules()),
                   Heading("Every step, from the loss back to the first layer"), _trace(result.steps, n, "L")]
    else:
        cited = _cited(chains, slopes)
        blocks += [Heading("Rules used"), _rules(cited),
                   Heading("Derivation, from the loss back to the first layer"),
                   Text((("text", "Each chain takes up the term "), ("math", r"\mathrm{tr}({\delta^{(l)}}^{\top} "
                                                                             r"\mathrm{d}Z^{(l)})"),
                         ("text", " that the one before left in "), ("math", r"\mathrm{d}L"),
                         ("text", ", and brings every term to the form "),
                         ("math", r"\mathrm{tr}(G^{\top} \mathrm{d}X)"), ("text", ", which reads off "),
                         ("math", r"\partial L / \partial X = G"), ("text", "; ⋯ stands for the terms already read off."))),
                   *(_chain_block(c, n) for c in chains)]
    if not is_scalar(net) or detail == "full":
        blocks += [Heading("Summary"), Summary(sum(_summary(chains, n), ()))]
    blocks += list(extra)
    forms = [] if is_scalar(net) or "index" not in wanted else ["index"] + (
        ["diag"] if net.m == 1 and net.layout != "AW" else [])
    results = [(symbol, E, kind, chain.where) for chain in chains for symbol, E, kind in chain.results]
    results.sort(key=lambda r: r[2] != "delta")   # the δ recursion, then the gradients, as in the summary
    carried = (net.Y, *[symbol for symbol, _, kind, _ in results if kind == "delta"])
    for form in forms:
        title = {"index": "Index form (entry i, j; sums over k)",
                 "diag": "Diagonal-matrix form (single sample)"}[form]
        shown = {"index": lambda E: one_based(index_form(E)), "diag": lambda E: diag_form(E, carried)}[form]
        rows = tuple((_form_lhs(symbol, kind, form, n), latex(shown(E), n), where)
                     for symbol, E, kind, where in results)
        blocks += [Heading(title), Equations(rows)]
    if "algorithm" in wanted:
        program = result.program()
        blocks += [Heading("The algorithm: one pass forward, the δ recursion, every gradient"), algorithm(program, n)]
        forms = stable_forms(program)
        if forms.rows:
            blocks += [Text((("text", "The functions it calls, in the numerically stable form the code computes:"),)),
                       forms]
    blocks += [Heading("Forward and backward flow"),
               Diagram(tuple(latex(M, n) for M in (net.X, *[layer.A for layer in net.layers])),
                       tuple(latex(layer.W, n) for layer in net.layers),
                       tuple(latex(layer.delta, n) for layer in net.layers))]
    return blocks


def _partial(f, x, n):
    return r"\frac{\partial %s}{\partial %s}" % (latex(f, n), latex(x, n))


def _chain_value(C, row, n):
    """The local derivatives' values times ∂C/∂(what closes the chain), or the value itself at the top."""
    if row.known is None:
        return latex(row.value, n)
    values = [f"({latex(v, n)})" if v.is_Add else latex(v, n) for v in row.values if v != 1]
    return " ".join(values + [_partial(C, row.known, n)])


def _scalar_rows(C, rows, n):
    """∂C/∂v = Π ∂num/∂den · ∂C/∂known = the values, one row per variable."""
    out = []
    for row in rows:
        if row.known is None:
            out.append((_partial(C, row.target, n), latex(row.value, n), "derivative of the cost"))
            continue
        chain = " ".join([_partial(num, den, n) for num, den in row.factors] + [_partial(C, row.known, n)])
        out.append((_partial(C, row.target, n), f"{chain} = {_chain_value(C, row, n)}", "chain rule"))
    return Equations(tuple(out))


def _summary(chains, n, function="L", partial=r"\frac{\partial %s}{\partial %s}"):
    """The δ recursion and every gradient, as the chains read them off (a generic layer's for every l)."""
    deltas, gradients = [], []
    for chain in chains:
        note, sums = chain.where, {s[0]: s[1:] for s in chain.sums}
        for symbol, E, kind in chain.results:
            if kind == "delta":   # a generic step's, tap's or head's δ holds where the chain does; a whole sum once
                generic = not chain.instances or any(symbol in instance for instance in chain.instances)
                deltas.append((latex(symbol, n), _summed(sums.get(symbol), E, n),
                               (chain.delta_where or note) if generic else ""))
            elif kind == "gradient":   # Σ over a generic step's or tap's terms as the chain states it
                gradients.append((partial % (function, latex(symbol, n)), _summed(sums.get(symbol), E, n),
                                  note if symbol not in sums else ""))
    return tuple(deltas), tuple(gradients)


def _summed(summed, E, n):
    """E as its chain states it: Σ over a generic step's, tap's or head's terms where `summed` (term, index, first,
    last) says so."""
    if summed is None:
        return latex(E, n)
    term, index, first, last = summed
    return r"\sum\nolimits_{%s=%s}^{%s} %s" % (index, first, last, latex(term, n))


# ∂f/∂X on one line
SLASHED = r"\partial %s / \partial %s"


def _trace(steps, notation, function="f"):
    """Every step as (rule, before, relation, after): a gradient read off as before ⇒ ∂f/∂X = G."""
    rows = []
    for s in steps:
        if s.rule is IDENTITIES["read off"]:
            after = r"\frac{\partial %s}{\partial %s} = %s" % (function, latex(s.node, notation),
                                                                latex(s.after, notation))
            rows.append((s.rule.name, latex(s.before, notation), r"\Rightarrow", after))
        else:
            rows.append((s.rule.name, latex(s.before, notation), "=", latex(s.after, notation)))
    return Trace(tuple(rows))


def generic_symbols_blocks(net, n):
    """The symbols of a deep network once, for a generic layer l (as its derivation is), and the widths."""
    widths = ", ".join(f"{latex(generic_size(net, 0), n).replace('l', str(k), 1)} = {latex(s, n)}"
                       for k, s in enumerate(net.sizes)) if not any(s.is_Symbol for s in net.sizes) else \
        ", ".join(latex(s, n) for s in net.sizes)
    return [symbols(net, n, generic=True),
            Text((("text", f"For l = {layer_range(net.L)}; the widths are "), ("math", widths),
                  ("text", ".")))]


def generic_forward(net, n):
    """The forward pass once for a generic layer l, the output layer's activation, and the loss."""
    g = generic_symbols(net, 0)
    out = net.output
    rows = [(latex(g["Z"], n), latex(g["Z_def"], n), f"for l = {layer_range(net.L)}, with A⁽⁰⁾ = X"),
            (latex(g["A"], n), latex(net.forward[net.layers[0].A].xreplace({net.layers[0].Z: g["Z"]}), n),
             f"for l = {layer_range(net.L - 1)}"),
            (latex(out.A, n), latex(out.A_def, n), "the output layer")]
    if net.weight_decay != 0:
        # the weight-decay term once for every layer, as R
        rows += [("L", latex(net.data_loss(), n) + " + R", ""),
                 ("R", r"\frac{%s}{2} \sum_{l} \mathrm{tr}({W^{(l)}}^{\top} W^{(l)})" % latex(net.weight_decay, n),
                  "weight decay")]
    else:
        rows.append(("L", latex(net.loss, n), ""))
    return Equations(tuple(rows), numbered=True)


def symbols(net, n, generic=False):
    """Every symbol of the network with its shape: X, Y, and W, b, Z, A, δ of each layer (or once for a generic
    layer l, as a deep network's derivation is); then 𝟏, the all-ones vector of the samples."""
    def shape(M):
        return r"\mathbb{R}^{%s \times %s}" % (latex(M.rows, n), latex(M.cols, n))

    by = "row" if net.layout == "AW" else "column"
    rows = [(latex(net.X, n), shape(net.X), f"the inputs, one sample per {by}" + ("; A⁽⁰⁾ = X" if generic else "")),
            (latex(net.Y, n), shape(net.Y), f"the targets, one sample per {by}")]
    layers = [("l", generic_symbols(net, 0))] if generic else [
        (layer.index, {"W": layer.W, "b": layer.b, "Z": layer.Z, "A": layer.A, "delta": layer.delta})
        for layer in net.layers]
    for l, s in layers:
        rows.append((latex(s["W"], n), shape(s["W"]), f"the weights of layer {l}"))
        if s["b"] is not None:
            rows.append((latex(s["b"], n), shape(s["b"]), f"the bias of layer {l}, one entry per unit"))
        rows += [(latex(s["Z"], n), shape(s["Z"]), f"the pre-activations of layer {l}"),
                 (latex(s["A"], n), shape(s["A"]), f"the activations of layer {l}"),
                 (latex(s["delta"], n), shape(s["delta"]),
                  f"the error of layer {l}: the gradient of L with respect to its pre-activations")]
    if net.m != 1:
        rows.append((r"\mathbf{1}_{%s}" % latex(net.m, n), shape(sp.OneMatrix(net.m, 1)),
                     "the all-ones vector, one entry per sample: it repeats a bias for every sample"))
    return Symbols(tuple(rows))


def one_based(E):
    """An index form with its sums written over 1, …, n with the dummies k, p, q, … (entries numbered from 1)."""
    names = iter("kpqrstuv")
    mapping = {}
    for node in sp.preorder_traversal(E):
        if isinstance(node, sp.Sum) and node not in mapping:
            (dummy, lo, hi), = node.limits
            k = sp.Symbol(next(names), integer=True)
            mapping[node] = sp.Sum(node.function.xreplace({dummy: k}), (k, lo + 1, hi + 1))
    return E.xreplace(mapping) if mapping else E


def _form_lhs(symbol, kind, form, n):
    """δ^(l), ∂L/∂W^(l) — with entry indices in the index form."""
    index = ("_{i}" if symbol.cols == 1 else "_{ij}") if form == "index" else ""
    if kind == "gradient":
        return r"\frac{\partial L}{\partial {%s}%s}" % (latex(symbol, n), index)
    return latex(symbol, n) + index


# helper -> (its value as mathematics, a note), for the helpers whose code reads as a formula
STABLE = {"sigmoid": (r"\sigma(x)", ""), "softmax": (r"\operatorname{softmax}(z)", "max and sum over each sample"),
          "log_softmax": (r"\log \operatorname{softmax}(z)", "max and sum over each sample")}


def stable_forms(program):
    """Equations f(x) = the formula the program's helper computes (σ without overflow, softmax with the maximum
    subtracted), each typeset by latexify-py from the helper function's own code."""
    import latexify

    rows = tuple((STABLE[name][0], where_as_cases(latexify.get_latex(
        helpers.HELPERS[name], use_signature=False, reduce_assignments=True, use_math_symbols=True, prefixes={"xp"})),
                  STABLE[name][1]) for name in program.helpers if name in STABLE)
    return Equations(rows)


def algorithm(program, notation=None, label=lambda P: r"\partial L / \partial " + P):
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
            return label(n.symbol(str(statement.output)))
        return printer.doprint(statement.symbol)

    rows = tuple((lhs(s), printer.doprint(s.expr)) for s in program.statements)
    computed = {s.lines[-1].target: s for s in program.statements}

    def returned(key, out):
        """The value returned for `key` by its name: ∂L/∂b = δ where the code returns δ itself."""
        value = lhs(computed[out]) if out in computed else printer.doprint(arguments[out])
        named = value if key is None else label(n.symbol(str(key)))
        return value if named == value else f"{named} = {value}"

    returns = tuple(returned(key, out) for key, out in program.outputs)
    return Algorithm(program.name, tuple(printer.doprint(a) for _, a in program.arguments), rows, returns,
                     codegen.python_source(program))


def _selections(net):
    """The selection matrices the definitions use, once each, by name."""
    found = {}
    for E in net.forward.values():
        for S in E.atoms(Select):
            found.setdefault(S.name, S)
    return [found[k] for k in sorted(found)]


# block kind -> presented(net, block): the concrete symbols a view of its repeated structure (step t, tap j) stands
# for, and the generic symbol and forward rows it writes in their place
PRESENTED = {"recurrent": views_recurrent.presented, "convolution": views_convolution.presented}


def _presented(net):
    """(the symbols written generically, {symbol: the symbol rows in its place}, {symbol: the forward rows in its
    place}) of every block a view presents."""
    covered, symbols, forward = set(), {}, {}
    for block in flatten(net.blocks):
        shown = PRESENTED[block.kind](net, block) if block.kind in PRESENTED else None
        if shown is not None:
            covered |= shown[0]
            symbols.update(shown[1])
            forward.update(shown[2])
    return covered, symbols, forward


def _placed(rows, covered, placed):
    """rows [(symbol, row)] with each covered symbol's row replaced by the rows placed there (none elsewhere)."""
    return [row for key, own in rows for row in (placed.get(key, []) if key in covered else [own])]


def _decimal(value):
    """A constant as a reader writes it: 10⁻⁵ for 1e-05, 0.001 as it is."""
    mantissa, exponent = f"{float(value):e}".split("e")
    mantissa, exponent = mantissa.rstrip("0").rstrip("."), int(exponent)
    if exponent > -4:
        return f"{float(value):g}"
    power = "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return power if mantissa == "1" else f"{mantissa} · {power}"


def _unit(net):
    """What a row (layout AW) or column of X holds: a time step where a convolution runs over them, else a sample."""
    return "time step" if any(b.kind == "convolution" for b in flatten(net.blocks)) else "sample"


def _shape(M, n):
    return r"\mathbb{R}^{%s \times %s}" % (latex(M.rows, n), latex(M.cols, n))


def block_symbols(net, n, forward):
    """The symbols of a network of blocks and its forward pass: Symbols of what the forward rows (Z, E, note) do not
    define (the inputs, the targets, the parameters, the selection matrices, the constants, a step's δ), and
    Definitions of what they do, each with its shape and meaning (a step t, a tap j, a head h once, generically)."""
    by, unit = "row" if net.layout == "AW" else "column", _unit(net)
    covered, placed, _ = _presented(net)
    meanings = {**dict(m for b in flatten(net.blocks) for m in b.meanings), **generic_meanings(net)}
    rows = [(X, (X, f"the inputs{' at step ' + X.name[1:] if len(net.inputs) > 1 else ''}, one {unit} per {by}"))
            for X in net.inputs]
    rows.append((net.Y, (net.Y, f"the targets, one {unit} per {by}")))
    rows += [(p.symbol, (p.symbol, p.meaning)) for p in net.parameter_info.values()]
    rows += [(Z, (Z, meanings.get(Z, ""))) for Z, _, _ in written(net, net.forward.items())]   # a head h once
    rows += [(S, (S, "a constant: " + meanings.get(S, "")))
             for S, _, _ in written(net, [(S, None) for S in _selections(net)])]
    described = dict(_placed(rows, covered, placed))
    defined = {Z for Z, _, _ in forward}
    given = [(latex(M, n), _shape(M, n), meaning) for M, meaning in described.items() if M not in defined]
    for c, value in net.constants.items():   # ε of a layer norm, d_k of self-attention
        given.append((latex(c, n), r"\mathbb{R}", meanings.get(
            c, f"a small constant, {_decimal(value)}, that keeps the square root from 0")))
    definitions = [(latex(Z, n), latex(E, n), _shape(Z, n), _with(described.get(Z, ""), note))
                   for Z, E, note in forward]
    definitions.append(("L", latex(net.loss, n), r"\mathbb{R}", "the loss"))
    return Symbols(tuple(given)), Definitions(tuple(definitions))


def _with(meaning, note):
    """A meaning and the note of its definition ("for h = 1, 2"), the note once."""
    return meaning if not note or note in meaning else f"{meaning}, {note}" if meaning else note


def size_words(net, n):
    """Text defining every size named by a letter (n, m, h, …): the inputs' features, the samples, a block's width."""
    named = {}
    if isinstance(net.sizes[0], sp.Symbol):
        named[net.sizes[0]] = "the number of input features"
    if isinstance(net.m, sp.Symbol):
        named.setdefault(net.m, "the number of samples")
    for block in flatten(net.blocks):
        for a in type(block.spec).arguments() if block.spec is not None else ():
            value = getattr(block.spec, a.name)
            if a.type == SIZE and isinstance(value, (str, sp.Symbol)):
                named.setdefault(sp.Symbol(str(value), integer=True, positive=True), f"{a.help} of layer {block.index}")
    # an attention layer's heads side by side: H heads of d_k columns are H·d_k wide
    heads = [(b.index, b.spec.heads, b.spec.d_k) for b in flatten(net.blocks)
             if b.kind == "self-attention" and b.spec.heads > 1 and isinstance(b.spec.d_k, int)]
    if not named and not heads:
        return None
    parts = [("text", "Sizes: ")]
    for k, (symbol, words) in enumerate(named.items()):
        parts += [("text", ", " if k else ""), ("math", latex(symbol, n)), ("text", f" is {words}")]
    for l, count, width in heads:
        parts += [("text", f"{'; ' if len(parts) > 1 else ''}the {count} heads of layer {l}, {width} columns each, "
                           f"side by side are {count * width} = {count} · {width} columns wide")]
    return Text((*parts, ("text", ".")))


KIND_WORDS = {"convolution": "convolution", "dense": "dense layer", "layer norm": "layer norm",
              "recurrent": "recurrent layer", "residual": "residual connection", "self-attention": "self-attention layer"}
COUNT_WORDS = {1: "a", 2: "two", 3: "three", 4: "four"}


def _block_words(net, n):
    """A network of blocks in sentences (Text parts): its layers in order, the loss and its reduction, in words."""
    by, unit = "row" if net.layout == "AW" else "column", _unit(net)
    loss = LOSS_WORDS.get(net.loss_name, net.loss_name)
    how = "summed over" if net.reduction == "sum" else "averaged over"
    count = net.samples_out
    parts = [("text", "The inputs "), ("math", latex(net.X, n) if len(net.inputs) == 1 else "X_{t}"),
             ("text", f" hold one {unit} per {by}. "),
             *([("text", "The samples are the positions (tokens) of one sequence: self-attention lets each attend to "
                         "every other. ")] if any(b.kind == "self-attention" for b in flatten(net.blocks)) else []),
             ("text", "In order, "),
             ("text", "; ".join(b.title for b in flatten(net.blocks)) + ". "),
             ("text", f"The loss is {loss}, {how} the "), ("math", latex(count, n)),
             ("text", f" {'output steps' if unit == 'time step' else 'samples'}")]
    if net.weight_decay != 0:
        parts += [("text", ", plus weight decay "),
                  ("math", r"\tfrac{%s}{2} \sum \|W\|_F^2" % latex(net.weight_decay, n)),
                  ("text", " over the weights")]
    notes = [b.note for b in flatten(net.blocks) if b.note]
    if notes:
        parts += [("text", ". In layer " + "; ".join(notes))]
    return tuple(parts + [("text", ".")])


def network_title(net):
    """A document's title for a network given no title: its blocks and its loss in words."""
    if net.dense_chain():
        return f"Backpropagation in a {net.describe()}"
    counts = Counter(KIND_WORDS.get(b.kind, b.kind) for b in flatten(net.blocks))
    kinds = [f"{COUNT_WORDS.get(k, k)} {kind}{'s' * (k > 1)}" for kind, k in counts.items()]
    listed = ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0]
    return f"Backpropagation through {listed}, with {LOSS_WORDS.get(net.loss_name, net.loss_name)}"


def network_of_blocks(result, n, detail="textbook", extra=(), sections=frozenset()):
    """Blocks for the Backprop of a network of blocks: the network, its symbols, the forward pass (a step t, a tap j
    once, generically), the rules, one chain per named intermediate under its block's heading (every step for detail
    "full"), the boxed summary of every δ and gradient, and the `sections` asked for (the generated code)."""
    net = result.network
    if "index" in sections:
        raise InvalidArgument("the index form is written for networks of dense layers only; this network has "
                              f"{', '.join(dict.fromkeys(b.kind for b in flatten(net.blocks)))} blocks")
    covered, _, placed = _presented(net)
    forward = _placed([(Z, (Z, E, where)) for Z, E, where in written(net, result.forward.items())], covered, placed)
    given, definitions = block_symbols(net, n, forward)
    sizes = size_words(net, n)
    blocks = [Heading("Network"), Text(network_words(net, n)), Heading("Symbols"), given,
              *([sizes] if sizes else []),
              Text((("text", "Each δ is the gradient of L with respect to the matrix it is named after: "),
                    ("math", r"\delta_{M} = \partial L / \partial M"), ("text", "; a layer's "),
                    ("math", r"\delta^{(l)} = \partial L / \partial Z^{(l)}"), ("text", ", of its pre-activations."))),
              NOTATION,
              Heading("Forward pass and loss"), definitions]
    if detail == "full":
        blocks += [Heading("Rules used"), _rules(result.rules()),
                   Heading("Every step, from the loss back to the first layer"), _trace(result.steps, n, "L")]
    else:
        slopes, chains = textbook(result)
        cited = _cited(chains, slopes)
        # the activations' derivatives are rules here, with the others
        rules = Rules(_rules(cited).rows + tuple((what, f"{lhs} = {rhs}") for what, lhs, rhs in _slope_rows(slopes, n)))
        blocks += [Heading("Rules used"), rules,
                   Heading("Derivation, from the loss back to the first layer"),
                   Text((("text", "Each chain takes up a term "), ("math", r"\mathrm{tr}(\delta_{M}^{\top} "
                                                                             r"\mathrm{d}M)"),
                         ("text", " left by a chain before it, writes M by its definition and brings every term to "),
                         ("math", r"\mathrm{tr}(G^{\top} \mathrm{d}U)"),
                         ("text", ", which reads off the δ of U ("), ("math", r"\partial L / \partial U"),
                         ("text", " for a parameter). Where several definitions read U, each chain that reaches it "
                                  "gives a contribution; after the last, the whole δ (or gradient) is their sum."))),
                   *(_chain_block(c, n) for c in chains)]
        # as the chains state them (a step t, a tap j, a head h once); ∂L/∂P slashed, a line high, in two columns
        deltas, gradients = _summary(chains, n, partial=SLASHED)
        stated = {symbol for c in chains for symbol, _, kind in c.results if kind == "gradient"}
        rows = deltas + gradients + tuple((SLASHED % ("L", latex(P, n)), latex(result.gradients[P.name], n), "")
                                          for P in net.parameters if P not in stated)   # read by nothing: 0
        columns = 2   # two rows a line, read across: a page break keeps their order
    if detail == "full":
        rows = [(latex(delta, n), latex(E, n), "") for delta, E in result.deltas.items()]
        rows += [(r"\frac{\partial L}{\partial %s}" % latex(result.parameter(k), n), latex(G, n), "")
                 for k, G in result.gradients.items()]
        columns = 1
    blocks += [Heading("Summary"), Summary(tuple(rows), columns=columns), *extra]
    if "algorithm" in sections:
        blocks += [Heading("The algorithm: one pass forward, every δ once, every gradient"),
                   algorithm(result.program(), n)]
    return blocks
