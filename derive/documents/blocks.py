"""Derivation documents as data: blocks (headings, text, equations, rules, symbols, algorithm, diagram) built from a
result."""
from dataclasses import dataclass

import sympy as sp

from ..codegen import helpers
from ..core.rules import IDENTITIES
from ..codegen import program as codegen
from ..printing.latex import LatexPrinter, Notation, latex


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


def _steps(steps, notation, function="f"):
    """The steps as equations before = after; a gradient read off as before ⇒ ∂f/∂X = G (not a scalar = a matrix)."""
    def row(s):
        if s.rule is IDENTITIES["read off"]:
            gradient = r"\frac{\partial %s}{\partial %s} = %s" % (function, latex(s.node, notation), latex(s.after, notation))
            return latex(s.before, notation), gradient, s.rule.name, r"\Rightarrow"
        return latex(s.before, notation), latex(s.after, notation), s.rule.name
    return Equations(tuple(row(s) for s in steps))


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
                              f"{net.reduction}; "), ("math", shapes), ("text", "."))),
              Heading("Symbols"), symbols(net, n),
              Text((("text", "Forward pass:"),)),
              Equations(tuple((latex(Z, n), latex(E, n), "") for Z, E in result.forward.items()), numbered=True),
              Heading("Loss"), Equations((("L", latex(net.loss, n), ""),), numbered=True)]
    blocks += [Heading("Rules used"), _rules(result.rules())]
    blocks.append(Heading("Derivation, from the loss back to the first layer"))
    segment = []
    for step in result.steps:
        segment.append(step)
        if step.rule is IDENTITIES["name"]:
            blocks += [Text((("text", "Down to "), ("math", latex(step.after, n)), ("text", ":"))),
                       _steps(segment, n, "L")]
            segment = []
    if segment:
        blocks += [Text((("text", "Reading off the parameters:"),)), _steps(segment, n, "L")]
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
    program = result.program()
    blocks += [Heading("Generated code (one pass: forward, δ recursion, gradients)"), algorithm(program, n)]
    forms = stable_forms(program)
    if forms.rows:
        blocks += [Text((("text", "The functions it calls, in the numerically stable form the code computes "
                                  "(typeset by latexify-py from the code itself):"),)), forms]
    blocks += [Heading("Forward and backward flow"),
               Diagram(tuple(latex(M, n) for M in (net.X, *[layer.A for layer in net.layers])),
                       tuple(latex(layer.W, n) for layer in net.layers),
                       tuple(latex(layer.delta, n) for layer in net.layers))]
    return blocks


def symbols(net, n):
    """Every symbol of the network with its shape: X, Y, and per layer W, b, Z, A, δ; then 𝟏, the all-ones vector
    of the samples."""
    def shape(M):
        return r"\mathbb{R}^{%s \times %s}" % (latex(M.rows), latex(M.cols))

    by = "row" if net.layout == "AW" else "column"
    rows = [(latex(net.X, n), shape(net.X), f"the inputs, one sample per {by}"),
            (latex(net.Y, n), shape(net.Y), f"the targets, one sample per {by}")]
    for layer in net.layers:
        l = layer.index
        rows.append((latex(layer.W, n), shape(layer.W), f"the weights of layer {l}"))
        if layer.b is not None:
            rows.append((latex(layer.b, n), shape(layer.b), f"the bias of layer {l}, one entry per unit"))
        rows += [(latex(layer.Z, n), shape(layer.Z), f"the pre-activations of layer {l}"),
                 (latex(layer.A, n), shape(layer.A), f"the activations of layer {l}"),
                 (latex(layer.delta, n), shape(layer.delta),
                  f"the error of layer {l}: the gradient of L with respect to its pre-activations")]
    repeat = "b 1ᵀ" if net.layout != "AW" else "1 bᵀ"
    rows.append((r"\mathbf{1}", shape(sp.OneMatrix(net.m, 1)),
                 f"the all-ones vector, one entry per sample ({repeat} repeats a bias b for every sample)"))
    return Symbols(tuple(rows))


def _form_lhs(key, form, result, n):
    """δ^(l), ∂L/∂W^(l) — with entry indices in the index form."""
    if key in result.gradients:
        P = result.parameter(key)
        index = ("_{i}" if P.cols == 1 else "_{ij}") if form == "index" else ""
        return r"\frac{\partial L}{\partial {%s}%s}" % (n.symbol(key), index)
    delta = next(d for d in result.deltas if d.name == key)
    return n.symbol(key) + (("_{i}" if delta.cols == 1 else "_{ij}") if form == "index" else "")


# helper -> (its value as mathematics, a note), for the helpers whose code reads as a formula
STABLE = {"sigmoid": (r"\sigma(x)", ""), "softmax": (r"\operatorname{softmax}(z)", "max and sum over each sample"),
          "log_softmax": (r"\log \operatorname{softmax}(z)", "max and sum over each sample")}


def stable_forms(program):
    """Equations f(x) = the formula the program's helper computes (σ without overflow, softmax with the maximum
    subtracted), each typeset by latexify-py from the helper function's own code."""
    import latexify

    rows = tuple((STABLE[name][0], latexify.get_latex(helpers.HELPERS[name], use_signature=False,
                                                      reduce_assignments=True, use_math_symbols=True, prefixes={"xp"}),
                  STABLE[name][1]) for name in program.helpers if name in STABLE)
    return Equations(rows)


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
