"""Documents of expressions: a gradient as one chain for df, a Hessian read off the second differential
(Magnus–Neudecker), and a network's R-recursion (Pearlmutter's R-operator in matrix form) for Hessian-vector and
Gauss–Newton products."""
import re

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct

from ..core.expr import Differential, ScalarDifferential, d as differential, postorder, children
from ..core.functions import sigmoid
from ..core.rules import DEFINITION, IDENTITIES, Rule, cite, operator
from ..engine.backward import zero_like
from ..engine.second import VEC, linear_map
from ..networks.backprop import r_pass
from ..networks.textbook import Chain, _Builder, differential as expanded
from ..printing.latex import LatexPrinter, Notation, latex
from ..errors import UnsupportedOperation
from .blocks import ChainBlock, Equations, Heading, Text, _chain_block, _rules, _trace, algorithm

MATH, TEXT = "math", "text"


def expression_chain(f, X, where=(), gradient=None):
    """df = … = tr(Gᵀ dX) as one chain: d moved in to dX and the differentials of the names f reads, each name's
    term brought to tr(G_Nᵀ dN), then each name expanded by its definition, the last defined first, and G read off
    (written as `gradient` where that is G with its terms in another order)."""
    definitions, varying = dict(where), {X}
    for Z, E in definitions.items():   # the names that depend on X, in the order they are defined
        if E.free_symbols & varying:
            varying.add(Z)

    def stops(E):
        return {S for S in E.free_symbols if S in varying}

    f = sp.Trace(f) if f.is_Matrix else f   # a 1×1 f is its trace
    rules, order = [], [X, *definitions]
    b = _Builder([expanded(f, stops(f), rules)], {E: Z for Z, E in definitions.items()})
    b.push(rules)
    adjoint = b.gather(order)
    for N in reversed(definitions):
        if N in adjoint:
            b.expand([N], stops(definitions[N]), definitions[N])
            del adjoint[N]
            adjoint.update(b.gather(order, only=stops(definitions[N])))
    G = adjoint.get(X, zero_like(X))
    if gradient is not None and _reordered(G, gradient):
        G = gradient
    return Chain(("The differential of ", sp.Symbol("f")), differential(sp.Symbol("f")), tuple(b.lines),
                 ((X, G, "gradient"),))


def _reordered(a, b):
    """Whether a and b are one sum with its terms in another order."""
    return a == b or (type(a) is type(b) and isinstance(a, (sp.Add, sp.MatAdd)) and set(a.args) == set(b.args))


def _chain_rules(chain):
    """The rules a chain cites, then the read-off."""
    return [*(r for line in chain.lines for r in line.rules), IDENTITIES["read off"]]


def expression_blocks(d, notation=None, detail="textbook"):
    """Blocks for a Derivation: f, its definitions and every argument's shape, then df as one chain to tr(Gᵀ dX)
    ("textbook") or every step ("full"), and the boxed gradient."""
    n = notation or Notation()
    blocks = [Heading("Function"), Equations((("f", latex(d.f, n), ""),
                                              *[(latex(Z, n), latex(E, n), "definition") for Z, E in d.where])),
              _shapes(d, n)]
    if detail == "full":
        blocks += [Heading("Rules used"), _rules(s.rule for s in d.steps), Heading("Derivation"), _trace(d.steps, n)]
    else:
        chain = expression_chain(d.f, d.wrt, d.where, d.gradient)
        blocks += [Heading("Rules used"), _rules(_chain_rules(chain)),
                   Heading("Derivation"), _chain_block(chain, n, "f")]
    grad = r"\boxed{\frac{\partial f}{\partial %s} = %s}" % (latex(d.wrt, n), latex(d.gradient, n))
    return blocks + [Heading("Result"), Equations(((grad, "", ""),))]


def _vec_rule(term, dX):
    """The vec identity a term of dG is read off with."""
    if isinstance(term, HadamardProduct) or (isinstance(term, sp.MatMul) and any(
            isinstance(a, HadamardProduct) for a in term.args)):
        return VEC["hadamard"]
    if term.has(sp.Transpose) and any(isinstance(t, sp.Transpose) and t.arg == dX for t in sp.preorder_traversal(term)):
        return VEC["transpose"]
    return VEC["product"]


def second_blocks(d, notation=None, detail="textbook"):
    """Blocks for a SecondDerivation: f, the gradient (its own derivation), the second differential by the rules
    applied to the gradient, the identification of H term by term (Hessian) or dG at dX = V (Hessian-vector
    product), the boxed result and the generated code."""
    n = notation or Notation()
    X = latex(d.wrt, n)
    dX = differential(d.wrt)
    blocks = [Heading("Function"), Equations((("f", latex(d.f, n), ""),
                                              *[(latex(Z, n), latex(E, n), "definition") for Z, E in d.where])),
              _shapes(d, n)]
    if d.kind == "hessian":
        blocks.append(Text(((TEXT, "The Hessian is read off the second differential. The gradient "),
                            (MATH, "G"), (TEXT, " comes first, from "), (MATH, r"\mathrm{d}f = \mathrm{tr}(G^{\top}"
                                                                               r" \mathrm{d}%s)" % X),
                            (TEXT, ". Then, as "), (MATH, r"\mathrm{d}(\mathrm{d}%s) = 0" % X),
                            (TEXT, " for the variable, "),
                            (MATH, r"\mathrm{d}^2 f = \mathrm{tr}(\mathrm{d}G^{\top} \mathrm{d}%s) = "
                                   r"\mathrm{vec}(\mathrm{d}%s)^{\top} \mathrm{vec}(\mathrm{d}G)" % (X, X)),
                            (TEXT, ", so the rules applied once more give "), (MATH, r"\mathrm{d}G"),
                            (TEXT, ", and writing "), (MATH, r"\mathrm{vec}(\mathrm{d}G) = H\,\mathrm{vec}(\mathrm{d}%s)"
                                                             % X),
                            (TEXT, " (columns stacked) reads off the Hessian "), (MATH, "H"),
                            (TEXT, ". It is symmetric, being the derivative of a gradient, so no symmetrising is "
                                   "needed."))))
    else:
        blocks.append(Text(((TEXT, "The Hessian-vector product is the differential of the gradient along the "
                                   "direction: "),
                             (MATH, r"H v = \frac{\partial}{\partial \varepsilon} \nabla f(%s + \varepsilon %s)"
                                    r"\big|_{\varepsilon = 0}" % (X, latex(d.direction, n))),
                             (TEXT, ", that is "), (MATH, r"\mathrm{d}G"), (TEXT, " at "),
                             (MATH, r"\mathrm{d}%s = %s" % (X, latex(d.direction, n))),
                             (TEXT, ". It is derived forward, by the same rules, and no Hessian is formed: the product "
                                    "costs about two gradients."))))
    if d.symmetric:
        blocks.append(Text(((TEXT, "The variable is symmetric: the gradient is taken in the space of symmetric "
                                   "matrices, "), (MATH, r"\operatorname{sym}(G) = (G + G^{\top})/2"),
                            (TEXT, ", and the Hessian restricted to it, "),
                            (MATH, r"P H P,\ P = (I + K)/2"), (TEXT, "."))))
    forward = d.steps[1:-1] if d.kind == "hessian" and d.wrt.is_Matrix else d.steps[1:]
    if detail == "full":
        steps = list(d.first)
        blocks += [Heading("Rules used"), _rules([*(s.rule for s in steps), *(s.rule for s in d.steps)])]
        blocks += [Heading("The gradient"), _trace(steps, n)]
    else:
        chain = expression_chain(d.f, d.wrt, d.where, d.gradient)
        blocks += [Heading("Rules used"), _rules([*_chain_rules(chain),
                                                  *(s.rule for s in d.steps[:len(forward) + 1]), *_vec_rules(d, dX),
                                                  *(s.rule for s in d.steps[len(forward) + 1:])])]
        blocks += [Heading("The gradient"),
                   Text(((TEXT, "First order: the rules bring "), (MATH, r"\mathrm{d}f"), (TEXT, " to the form "),
                         (MATH, r"\mathrm{tr}(G^{\top} \mathrm{d}%s)" % X), (TEXT, ", in one chain:"),)),
                   _chain_block(chain, n, "f")]
    blocks += [Equations(((r"\boxed{G = \frac{\partial f}{\partial %s} = %s}" % (X, latex(d.gradient, n)), "", ""),))]
    blocks += [Heading("The differential of the gradient" if d.kind == "hessian" else "The product, forward"),
               Text(((TEXT, "Each node of "), (MATH, "G"), (TEXT, ", from the variable up, by its rule:"),)),
               _forward_rows(forward, n, d)]
    if d.kind == "hessian" and d.wrt.is_Matrix:
        blocks += [Heading("Reading off the Hessian")]
        if d.wrt.cols == 1:
            blocks.append(Text(((MATH, r"\mathrm{d}%s" % X), (TEXT, " is a column, so "),
                                (MATH, r"\mathrm{vec}(\mathrm{d}%s) = \mathrm{d}%s" % (X, X)),
                                (TEXT, ", and a Hadamard product with it is a product with a diagonal matrix: "),
                                (MATH, r"h \odot u = \operatorname{diag}(h)\, u"), (TEXT, "."))))
        blocks.append(_identification(d, dX, n))
        result = r"\boxed{H = %s}" % latex(d.result, n)
    elif d.kind == "hessian":
        result = r"\boxed{\frac{\partial^2 f}{\partial %s^2} = %s}" % (X, latex(d.result, n))
    else:
        result = r"\boxed{H v = %s}" % latex(d.result, n)
    blocks += [Heading("Result"), Equations(((result, "", ""),))]
    if d.kind == "hessian" and d.wrt.is_Matrix:
        blocks += [t for t in (_convexity(d, n),) if t is not None]
    if d.kind == "hessian" and d.wrt.is_Matrix and d.wrt.cols == 1:
        blocks.append(Text(((TEXT, "A Newton step solves "), (MATH, r"H \Delta = G"), (TEXT, " and moves "),
                            (MATH, r"%s \leftarrow %s - \Delta" % (X, X)),
                            (TEXT, "; solve the system (by Cholesky of "), (MATH, "H"), (TEXT, " or of "),
                            (MATH, "-H"), (TEXT, ", where one of them is positive definite) rather than forming "),
                            (MATH, r"H^{-1}"),
                            (TEXT, ". The function below returns "), (MATH, "G"), (TEXT, " and "), (MATH, "H"),
                            (TEXT, "."))))
    program = d.program(f"gradient_and_{d.kind}")
    names = {"gradient": "G", "hessian": "H", "hvp": "H v"}
    blocks += [Heading("The algorithm: the gradient and the " + ("Hessian" if d.kind == "hessian" else "product")
                       + " in one pass"), algorithm(program, n, label=lambda P: names.get(P, P))]
    return blocks


def _convexity(d, n):
    """H ⪰ c I with its reason, where H = c I + Σ c_k Mᵀ diag(h) M with every c ≥ 0 and each factor of h a name
    a := σ(·) or 1 − a (entries in (0, 1)); None for an H of another form."""
    bounded = {Z for Z, E in d.where if isinstance(E, ElementwiseApplyFunction) and E.function.expr.func is sigmoid}
    bounded |= {sp.MatAdd(sp.OneMatrix(*a.shape), -a) for a in bounded}
    ridge, curved = sp.S.Zero, []
    for t in sp.MatAdd.make_args(d.result):
        c, mats = t.as_coeff_matrices() if isinstance(t, sp.MatMul) else (sp.S.One, [t])
        if not c.is_nonnegative:
            return None
        if len(mats) == 1 and isinstance(mats[0], sp.Identity):
            ridge += c
        elif len(mats) == 3 and mats[0] == mats[2].T and isinstance(mats[1], sp.DiagMatrix) and all(
                h in bounded for h in _factors(mats[1].args[0])):
            curved.append((c, mats[2], mats[1]))
        else:
            return None
    if not curved:
        return None
    _, M, D = curved[0]
    bound = r"H \succeq %s" % (latex(ridge, n) + " I" if ridge != 0 else "0")
    strictly = ((TEXT, ", strictly for "), (MATH, latex(ridge, n) + " > 0"), (TEXT, ", where H is positive definite")) \
        if ridge != 0 else ()
    return Text(((TEXT, "Convexity. "), (MATH, "D = " + latex(D, n)), (TEXT, " has positive entries, as "),
                 (MATH, r"0 < \sigma < 1"), (TEXT, ", so "),
                 (MATH, r"u^{\top} %s D\, %s u = \sum_i D_{ii} (%s u)_i^2 \geq 0" % (latex(M.T, n), latex(M, n),
                                                                                   latex(M, n))),
                 (TEXT, " for every "), (MATH, "u"), (TEXT, ": "),
                 (MATH, r"%s D\, %s \succeq 0" % (latex(M.T, n), latex(M, n))),
                 (TEXT, " (so is every such term), hence " if len(curved) > 1 else ", hence "), (MATH, bound),
                 *(((TEXT, ". With "), (MATH, latex(ridge, n) + r" \geq 0")) if ridge != 0 else ()),
                 (TEXT, ", f is convex"), *strictly, (TEXT, ".")))


def _factors(h):
    """The factors of a Hadamard product (h itself for another matrix)."""
    return h.args if isinstance(h, HadamardProduct) else (h,)


def _vec_rules(d, dX):
    """The vec identities the Hessian is read off with, one per term of dG."""
    if d.kind != "hessian" or not d.wrt.is_Matrix:
        return []
    terms = sp.MatAdd.make_args(d.differential)
    return [_vec_rule(t, dX) for t in terms]


def _forward_rows(steps, n, d):
    """The forward steps d(node) = rule(d children), each with its rule, then dG with every step substituted."""
    lhs = r"\mathrm{d}G" if d.kind == "hessian" else r"H v = \mathrm{d}G"
    return Equations((*((latex(s.before, n), latex(s.after, n), s.rule.name) for s in steps),
                      (lhs, latex(d.differential, n), "substituted")))


def _shapes(d, n):
    """Every argument with its shape, in a sentence; 𝟏 and the entrywise functions where f uses them."""
    args = d.plan()[0]
    parts = [(TEXT, "Here ")]
    for k, a in enumerate(args):
        shape = r" \in \mathbb{R}^{%s \times %s}" % (latex(a.rows, n), latex(a.cols, n)) if a.is_Matrix else \
            r" \in \mathbb{R}"
        parts += [(MATH, latex(a, n) + shape), (TEXT, ", " if k < len(args) - 2 else " and " if k == len(args) - 2
                                                 else "")]
    used = (d.f, *(E for _, E in d.where))
    if any(E.has(sp.OneMatrix) for E in used):
        parts += [(TEXT, "; "), (MATH, r"\mathbf{1}"), (TEXT, " is the all-ones matrix of the shape around it")]
    if any(E.has(ElementwiseApplyFunction, HadamardPower) for E in used):
        parts.append((TEXT, "; the functions apply entry by entry"))
    return Text((*parts, (TEXT, ".")))


def _identification(d, dX, n):
    """dG term by term: vec(term) = M vec dX with the vec identity it uses, then H."""
    terms = sp.MatAdd.make_args(d.differential)
    rows = [(r"\mathrm{d}G", latex(d.differential, n), "")]  # each term, then the sum
    for t in terms:
        rows.append((r"\mathrm{vec}(%s)" % latex(t, n), r"%s\,\mathrm{vec}(%s)" % (
            latex(linear_map(t, dX), n), latex(dX, n)), _vec_rule(t, dX).name))
    rows.append((r"\mathrm{vec}(\mathrm{d}G)", r"H\,\mathrm{vec}(%s)" % latex(dX, n), VEC["identify"].name))
    return Equations(tuple(rows))


R_WORDS = {
    "hvp": "the Hessian-vector product",
    "gauss_newton": "the Gauss–Newton product",
}


def r_blocks(bp, notation=None):
    """Blocks for a network's R-recursion: R{Z}, R{A} forward and R{δ} backward in matrix form, for the
    Hessian-vector product and for the Gauss–Newton product, and the generated code of the first."""
    n = notation or Notation()
    net = bp.network
    blocks = [Heading("Second order: the R-recursion"),
              Text(((TEXT, "For a direction "), (MATH, r"v = (V_{W^{(1)}}, V_{b^{(1)}}, \dots)"),
                    (TEXT, " in parameter space, write "),
                    (MATH, r"\mathcal{R}\{Q\} = \frac{\partial}{\partial \varepsilon} Q(\theta + \varepsilon v)"
                           r"\big|_{\varepsilon = 0}"),
                    (TEXT, " for the differential of any value "), (MATH, "Q"),
                    (TEXT, " of the backprop along "), (MATH, "v"),
                    (TEXT, " (Pearlmutter's R-operator). It obeys the rules of the differential, so applying them "
                           "to each line of the forward pass and of the δ recursion gives a forward tangent pass and "
                           "a second backward pass, and "),
                    (MATH, r"\mathcal{R}\{\partial L / \partial W^{(l)}\} = (H v)_{W^{(l)}}"),
                    (TEXT, ": one Hessian-vector product for about the cost of two gradients, no Hessian formed.")))]
    forward, backward, products = _r_rows(bp, "hvp", n)
    blocks += [Heading("Hessian-vector product"), *_r_worked(bp, n),
               Text(((TEXT, "The forward (tangent) pass, with "), (MATH, latex(net.X, n)),
                     (TEXT, " and "), (MATH, latex(net.Y, n)), (TEXT, " fixed:"))), Equations(forward, numbered=True),
               Text(((TEXT, "The second backward pass, then the products, one per parameter:"),)),
               Equations(backward + products, numbered=True)]
    aliases = _gauss_newton_symbols(bp, n)
    _, gn_backward, gn_products = _r_rows(bp, "gauss_newton", n, aliases)
    same = [row[0] for row in gn_backward if row in backward]   # the output's R{δ}: as in the Hessian's
    output = latex({delta: Z for Z, delta in net.deltas.items()}[next(iter(bp.deltas))], n)
    theta = r"\theta = (%s)" % ", ".join(latex(P, n) for P in net.parameters)
    blocks += [Heading("Gauss–Newton product"),
               Text(((TEXT, "With "), (MATH, theta), (TEXT, ", "), (MATH, r"H = \nabla^2_\theta L"),
                     (TEXT, " is the Hessian above. The Gauss–Newton matrix "),
                     (MATH, r"G_{\mathrm{GN}} = J^{\top} H_L J"),
                     (TEXT, " keeps only the curvature of the loss in the network's output, with "),
                     (MATH, r"J = \partial\, \mathrm{vec}\, %s / \partial \theta" % output),
                     (TEXT, " and "), (MATH, r"H_L = \partial^2 L / \partial (\mathrm{vec}\, %s)^2" % output),
                     (TEXT, ". In the recursion, the output's "), (MATH, r"\delta"),
                     (TEXT, " is differentiated through the forward values as before, and every other line through "
                            "the δ alone, the weights and activations held fixed: this drops exactly the terms "
                            "that multiply a δ by a direction ("), (MATH, r"V_W"), (TEXT, " or "),
                     (MATH, r"\mathcal{R}\{A\}"),
                     (TEXT, ") or by a second derivative of an activation, so "), (MATH, r"H - G_{\mathrm{GN}}"),
                     (TEXT, " vanishes where the residuals do. When L is convex in "), (MATH, output),
                     (TEXT, " (cross-entropy, squared error), "), (MATH, r"H_L \succeq 0"), (TEXT, " and so "),
                     (MATH, r"G_{\mathrm{GN}} \succeq 0"), (TEXT, " at every "), (MATH, r"\theta"),
                     (TEXT, ", while "), (MATH, "H"), (TEXT, " may be indefinite. The forward pass is "
                                                             "the one above"),
                     *(((TEXT, ", and so is the line for "), (MATH, ",\\ ".join(same))) if same else ()),
                     (TEXT, ". The other lines are not those of the Hessian's pass, so their values have symbols of "
                            "their own, "), (MATH, ",\\ ".join(aliases.values())),
                     (TEXT, ": the δ recursion run back from "), *(((MATH, ",\\ ".join(same)),) if same else ()),
                     (TEXT, " with the weights and activations held fixed ("), (MATH, r"J^{\top}"),
                     (TEXT, " applied to "), (MATH, r"H_L J v"), (TEXT, "). They and the products:"))),
               Equations(tuple(row for row in gn_backward if row not in backward) + gn_products, numbered=True)]
    program = bp.program("hvp")
    blocks += [Heading("The algorithm: gradient pass, then the R pass"),
               algorithm(program, n, label=lambda P: r"(H v)_{%s}" % P)]
    return blocks


def _r_rows(bp, kind, n, aliases=None):
    """(forward, backward, products): the (lhs, rhs, note) rows of the R lines of `kind` and its products, the
    symbols in `aliases` written as it says."""
    printer = LatexPrinter(n)
    printer.aliases = aliases or {}
    statements, outputs = r_pass(bp, kind)
    values = {f"R_{Z.name}" for Z in bp.forward}
    rows = [(printer.doprint(R), printer.doprint(E), "") for R, E in statements]
    forward = tuple(row for row, (R, _) in zip(rows, statements) if R.name in values)
    backward = tuple(row for row, (R, _) in zip(rows, statements) if R.name not in values)
    label = r"(H v)_{%s}" if kind == "hvp" else r"(G v)_{%s}"
    return forward, backward, tuple((label % n.symbol(name), printer.doprint(E), "") for name, E in outputs.items())


def _gauss_newton_symbols(bp, n):
    """{R{S}: δ̂}: the backward values of the Gauss–Newton pass that are not the Hessian's (another definition, or
    one that reads such a value), each written with a hat: δ̂⁽¹⁾, not R{δ⁽¹⁾}."""
    hvp, values, aliases = dict(r_pass(bp, "hvp")[0]), {f"R_{Z.name}" for Z in bp.forward}, {}
    for R, E in r_pass(bp, "gauss_newton")[0]:
        if R.name not in values and (hvp.get(R) != E or E.free_symbols & set(aliases)):
            aliases[R] = re.sub(r"^(\\[A-Za-z]+|[A-Za-z])", r"\\hat{\1}", n.symbol(R.name[2:]), count=1)
    return aliases


# R{P} = V_P: a parameter moves along its direction
DIRECTION = Rule("direction", r"\mathcal{R}\{P\} = V_P")


class _RPrinter(LatexPrinter):
    """LaTeX with the differential along v written as Pearlmutter's R{·}."""

    def _print_Differential(self, expr):
        return r"\mathcal{R}\{%s\}" % self._print(expr.arg)

    _print_ScalarDifferential = _print_Differential


def _r_worked(bp, n):
    """One line of the forward pass and one of the δ recursion through the R-operator in full: R{S} = R{E}, the
    rules one level at a time down to R of values with an R line of their own, then V_P for R{P}, as ChainBlocks
    that end at the line of the HVP pass (a sentence first)."""
    net = bp.network
    statements = dict(r_pass(bp, "hvp")[0])
    stated = {R.name[2:]: E for R, E in statements.items()}
    parameters = set(net.parameters)
    values = {S for S in (*bp.forward, *bp.deltas) if S.name in stated}
    forward = [(S, E.xreplace(net.constants)) for S, E in bp.forward.items()]
    backward = [(S, E.xreplace({**bp._masks(), **net.constants})) for S, E in bp.deltas.items()]
    # the first line of each pass that reads a parameter and a value with an R: a product rule with V and R
    picks = [next(((S, E) for S, E in lines if S.name in stated and E.free_symbols & parameters
                   and E.free_symbols & (values - {S}) & kinds), None)
             for lines, kinds in ((forward, set(bp.forward)), (backward, set(bp.deltas)))]
    names = {E: Z for Z, E in forward if not isinstance(E, sp.MatrixSymbol)}   # tanh(Z) written A
    chains = [_r_chain(S, E, parameters | values, bp.directions(), names, stated[S.name], n)
              for S, E in picks if S is not None]
    if not chains:
        return []
    return [Text(((TEXT, "Each line is the differential of a line of the gradient's pass, by the same rules, with "),
                  (MATH, r"\mathcal{R}\{P\} = V_P"), (TEXT, " for a parameter and "),
                  (MATH, r"\mathcal{R}\{X\} = \mathcal{R}\{Y\} = 0"),
                  (TEXT, ". One line of each pass in full:"))), *chains]


def _r_chain(S, E, varying, directions, names, stated, n):
    """R{S} = R{E} = … : the rules applied one level of E at a time, then R{P} = V_P; the last line the R pass's."""
    printer = _RPrinter(n)
    T, rows = differential(E), []

    def dep(node):
        return bool(node.free_symbols & varying)

    rows.append(((printer.doprint(T),), DEFINITION.name))
    while True:
        inner = [D for D in postorder(T, children) if isinstance(D, (Differential, ScalarDifferential))
                 and D.arg not in varying]
        if not inner:
            break
        rules = []
        T = T.xreplace({D: _r_rule(D.arg, dep, rules) for D in inner}).xreplace(names)
        rows.append(((printer.doprint(T),), ", ".join(dict.fromkeys(r.name for r in rules))))
    T = T.xreplace({differential(P): V for P, V in directions.items()})
    rows.append(((printer.doprint(T),), DIRECTION.name))
    if printer.doprint(stated) != rows[-1][0][0]:
        rows.append(((printer.doprint(stated),), "algebra"))
    title = (("text", "The line of "), ("math", latex(S, n)))
    return ChainBlock(title, printer.doprint(differential(S)), tuple(rows), ())


def _r_rule(N, dep, rules):
    """d N by its rule, one level (the rule appended to `rules`)."""
    entry = operator(N)
    if entry is None:
        raise UnsupportedOperation(type(N).__name__, N, "it has no differential rule")
    rules.append(cite(N, dep))
    return entry.differential.apply(N, dep)


__all__ = ["expression_blocks", "expression_chain", "r_blocks", "second_blocks"]
