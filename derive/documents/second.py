"""Documents of second order: a Hessian read off the second differential (Magnus–Neudecker), and a network's
R-recursion (Pearlmutter's R-operator in matrix form) for Hessian-vector and Gauss–Newton products."""
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct

from ..core.expr import d as differential
from ..engine.second import VEC, linear_map
from ..networks.backprop import r_pass
from ..printing.latex import Notation, latex
from .blocks import Equations, Heading, Text, _rules, _trace, algorithm

MATH, TEXT = "math", "text"


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
        blocks += [Heading("Rules used"), _rules([*(s.rule for s in d.steps[:len(forward) + 1]), *_vec_rules(d, dX),
                                                  *(s.rule for s in d.steps[len(forward) + 1:])])]
        blocks += [Heading("The gradient"),
                   Text(((TEXT, "By the first-order method: one reverse sweep brings "), (MATH, r"\mathrm{d}f"),
                         (TEXT, " to the form "), (MATH, r"\mathrm{tr}(G^{\top} \mathrm{d}%s)" % X),
                         (TEXT, ", which reads off"),))]
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
    if d.kind == "hessian" and d.wrt.is_Matrix and d.wrt.cols == 1:
        blocks.append(Text(((TEXT, "A Newton step solves "), (MATH, r"H \Delta = G"), (TEXT, " and moves "),
                            (MATH, r"%s \leftarrow %s - \Delta" % (X, X)),
                            (TEXT, "; solve the system (by Cholesky where "), (MATH, "H"),
                            (TEXT, " is positive definite) rather than forming "), (MATH, r"H^{-1}"),
                            (TEXT, ". The function below returns "), (MATH, "G"), (TEXT, " and "), (MATH, "H"),
                            (TEXT, "."))))
    program = d.program(f"gradient_and_{d.kind}")
    names = {"gradient": "G", "hessian": "H", "hvp": "H v"}
    blocks += [Heading("The algorithm: the gradient and the " + ("Hessian" if d.kind == "hessian" else "product")
                       + " in one pass"), algorithm(program, n, label=lambda P: names.get(P, P))]
    return blocks


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
    """The arguments with their shapes, in a sentence."""
    parts = [(TEXT, "Here ")]
    args = [a for a in d.plan()[0]]
    for k, a in enumerate(args):
        shape = r" \in \mathbb{R}^{%s \times %s}" % (latex(a.rows, n), latex(a.cols, n)) if a.is_Matrix else \
            r" \in \mathbb{R}"
        parts += [(MATH, latex(a, n) + shape), (TEXT, ", " if k < len(args) - 2 else " and " if k == len(args) - 2
                                                 else "; ")]
    return Text((*parts, (MATH, r"\mathbf{1}"), (TEXT, " is the all-ones matrix of the shape around it, and the "
                                                      "functions apply entry by entry.")))


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
    blocks += [Heading("Hessian-vector product"),
               Text(((TEXT, "The forward (tangent) pass, with "), (MATH, latex(net.X, n)),
                     (TEXT, " and "), (MATH, latex(net.Y, n)), (TEXT, " fixed:"))), Equations(forward, numbered=True),
               Text(((TEXT, "The second backward pass, then the products, one per parameter:"),)),
               Equations(backward + products, numbered=True)]
    shown = {row[:2] for row in backward}
    _, gn_backward, gn_products = _r_rows(bp, "gauss_newton", n)
    same = [row[0] for row in gn_backward if row[:2] in shown]   # the output's R{δ}: as in the Hessian's pass
    output = latex(net.layers[-1].Z, n) if net.dense_chain() else "Z"
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
                     (TEXT, "; the rest of the backward pass and the products:"))),
               Equations(tuple(row for row in gn_backward if row[:2] not in shown) + gn_products, numbered=True)]
    program = bp.program("hvp")
    blocks += [Heading("The algorithm: gradient pass, then the R pass"),
               algorithm(program, n, label=lambda P: r"(H v)_{%s}" % P)]
    return blocks


def _r_rows(bp, kind, n):
    """(forward, backward, products): the (lhs, rhs, note) rows of the R lines of `kind` and its products."""
    statements, outputs = r_pass(bp, kind)
    values = {f"R_{Z.name}" for Z in bp.forward}
    forward = tuple((latex(R, n), latex(E, n), "") for R, E in statements if R.name in values)
    backward = tuple((latex(R, n), latex(E, n), "") for R, E in statements if R.name not in values)
    label = r"(H v)_{%s}" if kind == "hvp" else r"(G v)_{%s}"
    return forward, backward, tuple((label % n.symbol(name), latex(E, n), "") for name, E in outputs.items())


__all__ = ["r_blocks", "second_blocks"]
