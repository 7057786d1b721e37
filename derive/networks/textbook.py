"""The textbook view of a backprop: per layer one chain dL = … = tr(δᵀ dZ) of a few lines, each line an expression
equal to the one before that cites the rules leading to it (the engine's step log is the full view)."""
import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower

from ..core.expr import Differential, ScalarDifferential, children, d, matadd, matmul, postorder, substitute, tp
from ..core.functions import ELT, Softmax, derivative
from ..core.hadamard import simplify, textbook_form
from ..core.registry import ACTIVATIONS
from ..core.rules import CONSTANT, DEFINITION, IDENTITIES, Rule, cite, operator
from ..core.shapes import memoised
from ..engine.backward import algebra, form, pullback
from ..engine.derivation import BOOKKEEPING, once
from ..errors import UnsupportedOperation
from ..printing.latex import latex
from ..printing.text import text, wrap_lines
from .blocks import flatten
from .network import generic_layer

LOSS = sp.Symbol("L")


@dataclass(frozen=True)
class Line:
    """= t1 + t2 + …: the terms of one line of a chain, and the rules that lead to it from the line before."""

    terms: tuple
    rules: tuple


@dataclass(frozen=True)
class Chain:
    """lhs = line 1 = line 2 = …, then what is read off the last line: (symbol, expression, kind), kind "delta"
    (δ := G), "gradient" (∂L/∂P = G), or "delta contribution", "gradient contribution" (G is the term of that δ or
    gradient that passes through `via`), or "form" (an expression of the results, `symbol`, written as G)."""

    title: tuple   # text and SymPy expressions
    lhs: sp.Basic
    lines: tuple
    results: tuple
    note: tuple = ()  # text and SymPy expressions, said after the title
    where: str = ""   # the layers a generic chain stands for: "for l = 2, 1"
    remark: object = ""  # said after the results: text, or a tuple of text and SymPy expressions
    via: object = None   # the matrix whose δ the chain starts from: a result of kind "contribution" passes through it
    instances: tuple = ()  # a generic chain's {generic symbol: its symbol at step t}, one per step it stands for
    sums: tuple = ()     # (symbol, term, index, first, last): a whole result that is Σ_index term, written so
    delta_where: str = ""   # where the δ read off holds, if not everywhere the chain does (δ_{t−1}: not at t = 1)


@dataclass(frozen=True)
class Slope:
    """σ′ of an activation written out: σ′(z) = the derivative of its definition = the form in σ itself."""

    name: str
    function: sp.Basic   # σ(z)
    definition: object   # σ(z) in exponentials, or None
    steps: tuple         # σ′(z) = … = …


class _Builder:
    """A chain under construction: its current terms (whose sum is the chain's left side) and its lines."""

    def __init__(self, terms, rewrite):
        self.terms, self.lines, self.rewrite = list(terms), [], rewrite

    def push(self, rules):
        # c (t1 + t2) written c t1 + c t2: one term per trace
        self.terms = [u for t in self.terms for u in sp.Add.make_args(
            sp.expand(t, deep=False) if t.is_Mul and any(f.is_Add for f in t.args) else t)]
        terms = tuple(self.terms)
        if self.lines and self.lines[-1].terms == terms:
            return
        cited = tuple(dict.fromkeys(r for r in rules if r not in BOOKKEEPING))
        self.lines.append(Line(terms, cited))

    def expand(self, nodes, stop, definition=None):
        """Replace each d node by its differential down to d(stop) (the definition's, for a name), names for
        what has one (σ(Z) written A)."""
        rules = [DEFINITION] if definition is not None else []
        mapping = {d(N): differential(definition if definition is not None else N, stop, rules) for N in nodes}
        self.terms = [substitute(t.xreplace(mapping), self.rewrite) if self.rewrite else t.xreplace(mapping)
                      for t in self.terms]
        self.push(rules)

    def gather(self, order, only=None, collect=True):
        """Bring the terms that hold d X (X in `only`, default all) to Σ_X tr(G_Xᵀ dX), in `order`, each G_X
        in textbook form; collect=False keeps each term's own tr(Gᵀ dX), for a step between."""
        rules = []
        if not collect:
            terms = []
            for t in self.terms:
                for X, G in sorted(self._pull(t, rules), key=lambda p: order.index(p[0])):
                    tidy = self._tidy(G, rules)
                    if _regrouped(tidy, [t]):
                        rules.append(IDENTITIES["product transpose"])
                    terms.append(readable(tidy, X))
            self.terms = terms
            self.push(rules)
            return None
        adjoint, rest, sources = {}, [], {}
        for t in self.terms:
            if only is not None and not any(t.has(d(X)) for X in only):
                rest.append(t)
                continue
            for X, G in self._pull(t, rules):
                adjoint.setdefault(X, []).append(G)
                sources.setdefault(X, []).append(t)
        if any(len(Gs) > 1 for Gs in adjoint.values()):
            rules.append(IDENTITIES["collect"])
        gathered = []
        for X in sorted(adjoint, key=order.index):
            G = matadd(*adjoint[X]) if X.is_Matrix else sp.Add(*adjoint[X])
            # several terms over one denominator cite the common denominator, the rest plain or Hadamard algebra
            over = len(adjoint[X]) > 1
            tidy = self._tidy(G, rules, IDENTITIES["quotients"] if over else None)
            if _regrouped(tidy, sources[X]):
                rules.append(IDENTITIES["product transpose"])   # tr(δᵀ Wᵀ dA) written tr((W δ)ᵀ dA)
            gathered.append((X, tidy))
        self.terms = rest + [readable(G, X) for X, G in gathered]
        self.push(rules)
        return dict(gathered)

    def _pull(self, t, rules):
        """[(X, G)] with t = Σ tr(Gᵀ dX), the rules of the steps that show appended to `rules`."""
        pairs, steps = pullback(sp.S.One, t, self.rewrite, None)
        rules += _moving(steps)
        return pairs

    def _tidy(self, G, rules, quotients=None):
        """G in textbook form, the rule that made it so appended to `rules` (`quotients` where it came to a
        quotient)."""
        tidy = textbook_form(simplify(G, self.rewrite), self.rewrite)
        if tidy != G:
            rules.append(quotients if quotients is not None and _quotient(tidy) else algebra(G, tidy))
        return tidy


def _moving(steps):
    """The rules of the steps that change what is printed: tr((W δ)ᵀ T) is already tr(Gᵀ T), and a cyclic step
    that writes it again moves nothing."""
    return [s.rule for s in steps if text(_plain(s.before)) != text(_plain(s.after))]


def _plain(e):
    """e with every transposed product written out, (W δ)ᵀ as δᵀ Wᵀ: the same expression, printed one way."""
    e = e.replace(lambda n: isinstance(n, sp.Transpose) and isinstance(n.arg, sp.MatMul), lambda n: tp(n.arg))
    return e.replace(lambda n: isinstance(n, sp.MatMul), lambda n: matmul(*n.args))   # (δᵀ Wᵀ) T as δᵀ Wᵀ T


def _regrouped(G, terms):
    """Whether G has a product W δ a factor of which the terms it came from hold transposed (δᵀ Wᵀ, or δᵀ dW H read
    as tr((δ Hᵀ)ᵀ dW)): (AB)ᵀ = BᵀAᵀ."""
    products = [n for n in sp.preorder_traversal(G) if isinstance(n, sp.MatMul) and len(n.as_coeff_matrices()[1]) > 1]
    return any(any(t.has(sp.Transpose(f)) for t in terms for f in n.as_coeff_matrices()[1]
                   if not isinstance(f, sp.Transpose)) for n in products)


def _quotient(M):
    return any(isinstance(n, HadamardPower) and n.exp.is_negative for n in sp.preorder_traversal(M))


def readable(G, X):
    """tr(Gᵀ dX) with Gᵀ left as it is written, so that G reads off the line: tr((A δᵀ)ᵀ dW), not tr(δ Aᵀ dW)."""
    if not X.is_Matrix:
        return G * d(X)
    if isinstance(G, sp.MatMul) and len(G.as_coeff_matrices()[1]) > 1:
        return sp.Trace(sp.MatMul(sp.Transpose(G), d(X)))
    return form(G, d(X))


def _naming(E, A):
    """{σ(Z): A}: once A is named, σ(Z) is written A (nothing for A := Z, a linear layer)."""
    return {} if E.is_Symbol or isinstance(E, sp.MatrixSymbol) else {E: A}


def differential(E, stop, rules):
    """dE by the rule table down to the differentials of the nodes in `stop` (each rule applied appended to
    `rules`); a sub-expression without any of them is constant."""
    if E in stop:
        return d(E)
    entry = operator(E)
    if entry is None:
        raise UnsupportedOperation(type(E).__name__, E)

    def dep(node):
        return any(node == s or node.has(s) for s in stop)

    rules.append(cite(E, dep))
    if any(isinstance(a, sp.MatrixSymbol) and not dep(a) for a in _operands(E)):
        rules.append(CONSTANT)   # d of the data (X, Y) and of a constant is 0: its term drops out
    activation = _activation(E)
    if activation is not None:   # σ′, cited where it is used
        rules.append(_derivative_rule(activation.name, activation.body))
    t = entry.differential.apply(E, dep)
    inner = {D: differential(D.arg, stop, rules) for D in _differentials(t) if D.arg not in stop}
    return t.xreplace(inner) if inner else t


def _activation(E):
    """The registered activation E applies entrywise (not the identity), or None."""
    if not isinstance(E, ElementwiseApplyFunction):
        return None
    (x,), body = E.function.variables, E.function.expr
    body = body.xreplace({x: ELT})
    return next((a for a in ACTIVATIONS.values() if a.elementwise and a.body == body and body != ELT), None)


@functools.lru_cache(maxsize=None)
def _derivative_rule(name, body):
    """The rule "derivative of σ": σ′(z) = … for the activation `name` with σ(ELT) = body (once per activation, not
    at every chain that uses it)."""
    z = sp.Symbol("z", real=True)
    body = body.xreplace({ELT: z})
    return Rule(f"derivative of {name}", r"%s^{\prime}(z) = %s" % (latex(body).replace("(z)", "", 1),
                                                                  latex(derivative(body, z))))


def _operands(E):
    """E's operands, a transpose's argument for the transpose."""
    return [a.arg if isinstance(a, sp.Transpose) else a for a in E.args]


def _differentials(t):
    return [n for n in postorder(t, children) if isinstance(n, (Differential, ScalarDifferential))]


def _function_nodes(E, A):
    """The nodes of E that apply a function to an expression of A (log A, log(1 − A)): where d stops first."""
    return [n for n in postorder(E, children)
            if isinstance(n, (ElementwiseApplyFunction, sp.Function, HadamardPower)) and n.has(A)
            and not isinstance(n, (Differential, ScalarDifferential))]


def output_chain(layer, delta, loss, title):
    """dL = … = tr(δ^(L)ᵀ dZ^(L)) for the data term of the loss: d moved in to the functions of A, their rules,
    the adjoint of A in textbook form, dA = σ′(Z) ⊙ dZ (or the softmax rule), and δ read off."""
    A, Z = layer.A, layer.Z
    rewrite = _naming(layer.A_def, A)
    b = _Builder([d(loss)], rewrite)
    functions = _function_nodes(loss, A)
    rules = []
    first = differential(loss, {A, *functions}, rules)
    b.terms = [first]
    b.push(rules)
    if functions:
        b.expand(functions, {A})
    b.gather([A], collect=False)   # each term on its own first: tr(−(Y ⊘ A)ᵀ dA) + tr(((1 − Y) ⊘ (1 − A))ᵀ dA)
    b.gather([A])
    b.expand([A], {Z}, layer.A_def)
    softmax = isinstance(layer.A_def, Softmax)
    if softmax:
        # the softmax rule leaves two terms: each brought to tr(Gᵀ dZ) before they are collected
        b.gather([Z], collect=False)
    G = b.gather([Z])[Z]
    return Chain(title, d(LOSS), tuple(b.lines), ((delta, G, "delta"),), remark=_one_hot(G, A) if softmax else "")


def _one_hot(G, A):
    """What a softmax output's δ G becomes for one-hot targets: its Y 1 1ᵀ (or 1 1ᵀ Y), each sample's targets
    summed and spread over its entries, is all ones."""
    P = next(n for n in sp.preorder_traversal(G) if isinstance(n, sp.MatMul)
             and any(isinstance(f, sp.OneMatrix) for f in n.args)
             and any(isinstance(f, sp.MatrixSymbol) for f in n.args))
    Y, = [f for f in P.args if isinstance(f, sp.MatrixSymbol)]
    return ("When each sample's targets sum to 1 (one-hot targets), ", P, " = ", sp.OneMatrix(*P.shape),
            ", and the error is the familiar ", matadd(A, -Y), " (divided by the number of samples for the mean).")


def hidden_chain(delta_next, Z_next, Z_def, W, bias, A, A_def, Z, delta, title, decay=None, note=(), where=""):
    """tr(δ^(l+1)ᵀ dZ^(l+1)) = … = tr(δ^(l)ᵀ dZ^(l)) + the parameter terms: the definition of Z^(l+1), the
    product rule, each term on its differential, dA^(l) = σ′(Z^(l)) ⊙ dZ^(l), and δ^(l) read off (A = None: the
    inputs, constant: only the parameters are read off)."""
    rewrite = _naming(A_def, A) if A is not None else {}
    stop = [P for P in (W, bias, A) if P is not None]
    b = _Builder([form(delta_next, d(Z_next))], rewrite)
    b.expand([Z_next], set(stop), Z_def)
    adjoint = b.gather(stop)
    results = []
    if A is not None:
        b.expand([A], {Z}, A_def)
        adjoint.update(b.gather([*stop[:-1], Z], only=[Z]))
        results.append((delta, adjoint[Z], "delta"))
    for P in (W, bias):
        if P is not None:
            G = adjoint[P] if decay is None or P is not W else matadd(adjoint[P], decay)
            results.append((P, G, "gradient"))
    if decay is not None:
        note = (*note, "; " if note else "", "the weights' gradient adds λW from dR")
    return Chain(title, form(delta_next, d(Z_next)), tuple(b.lines), tuple(results), note, where)


def decay_chain(weights, weight_decay):
    """d(λ/2 Σ tr(W⁽ˡ⁾ᵀ W⁽ˡ⁾)) = λ Σ tr(W⁽ˡ⁾ᵀ dW⁽ˡ⁾): what weight decay adds to each ∂L/∂W⁽ˡ⁾."""
    R = weight_decay / 2 * sp.Add(*[sp.Trace(W.T * W) for W in weights])
    rules = []
    b = _Builder([differential(R, set(weights), rules)], {})
    b.push(rules)
    adjoint = b.gather(list(weights))
    title = ("The weight-decay term ", sp.Symbol("R"), " = (λ/2) Σ tr(W⁽ˡ⁾ᵀ W⁽ˡ⁾) of ", LOSS)
    return Chain(title, d(sp.Symbol("R")), tuple(b.lines), ()), adjoint


def slope(activation):
    """σ′ written out once, as seed 004 derives it: σ's definition in exponentials (1/(1 + e^{−z})), its derivative
    (e^{−z}/(1 + e^{−z})²), then the same in σ itself (σ(1 − σ)); a derivative in exponentials too long to help
    (tanh's) is left out: tanh′ = 1 − tanh²."""
    x = sp.Symbol("z", real=True)
    body = activation.body.xreplace({ELT: x})
    definition = activation.definition()(x).rewrite(sp.exp)
    raw = sp.diff(definition, x) if definition != body else None
    if raw is not None and sp.count_ops(raw) > 12:
        definition, raw = body, None
    own = derivative(body, x)
    steps = tuple(s for s in (raw, own) if s is not None and s != body)
    return Slope(activation.name, body, definition if definition != body else None, tuple(dict.fromkeys(steps)))


@once
@memoised
def textbook(result):
    """(slopes, chains) of a Backprop: σ′ of each activation, and the chains from the output layer down (one for
    a generic layer l where the hidden layers are alike), the weight-decay term's after the output layer's."""
    net = result.network
    if not net.dense_chain():
        used = [x.activation for b in flatten(net.blocks) for x in (b.layer, b.activated) if x is not None]
        return slopes_of(used), block_chains(result)
    layers = net.layers
    data = net.data_loss()
    decay, chains = {}, []
    if net.weight_decay != 0:
        chain, decay = decay_chain([layer.W for layer in layers], net.weight_decay)
        chains.append(chain)
    out = layers[-1]
    chains.insert(0, output_chain(out, out.delta, data, ("The output layer: from ", LOSS, " to ", out.delta)))
    if is_generic(net):
        chains.append(generic_chain(net, decay))
    else:
        for below, above in zip(reversed(layers[:-1]), reversed(layers[1:])):
            chains.append(hidden_chain(above.delta, above.Z, above.Z_def, above.W, above.b, below.A, below.A_def,
                                       below.Z, below.delta, (f"Layer {above.index}: from ", above.delta, " to ",
                                                              below.delta), decay.get(above.W)))
    first = layers[0]
    chains.append(hidden_chain(first.delta, first.Z, first.Z_def, first.W, first.b, None, None, None, None,
                               ("Layer 1: from ", first.delta, " to its parameters"), decay.get(first.W)))
    return slopes_of(layer.activation for layer in layers), tuple(chains)


def slopes_of(activations):
    """σ′ of each activation once, in order (a linear layer and softmax have none)."""
    return tuple(slope(a) for a in dict.fromkeys(activations) if a.elementwise and a.body != ELT)


def is_generic(net):
    """Whether the textbook view derives a generic layer l of `net`: three layers or more, the hidden layers alike
    (activation and bias) and every layer with a bias or none."""
    layers = net.layers
    return (len(layers) >= 3 and len({(h.activation, h.b is None) for h in layers[:-1]}) == 1
            and len({h.b is None for h in layers}) == 1)


def layer_range(k, down=False):
    """l = 1, …, k as a document writes it ("1, 2, 3" when short), or k, …, 1 counting down."""
    if k <= 3:
        return ", ".join(map(str, range(k, 0, -1) if down else range(1, k + 1)))
    return f"{k}, {k - 1}, …, 1" if down else f"1, …, {k}"


def generic_chain(net, decay):
    """The chain of a generic layer l (symbolic l) of a network for which is_generic holds; `decay` are the
    weight-decay adjoints (empty without weight decay)."""
    g = generic_layer(net)
    return hidden_chain(g["delta_next"], g["Z_next"], g["Z_next_def"], g["W"], g["b"], g["A"], g["A_def"],
                        g["Z"], g["delta"], ("A generic layer: from ", g["delta_next"], " to ", g["delta"]),
                        net.weight_decay * g["W"] if decay else None,
                        note=("with ", sp.MatrixSymbol("A0", *net.X.shape), " = ", net.X),
                        where=f"for l = {layer_range(net.L - 1, down=True)}")


def carried(terms, before):
    """How many leading terms of a chain line are carried unchanged from the line before (the parameters' terms,
    already read off), leaving at least the last."""
    kept = 0
    while kept < len(terms) - 1 and terms[kept] in before:
        kept += 1
    return kept


def _wrap(first, parts, indent, width):
    """first + parts joined, broken before a part that would pass `width` (continuations at `indent`)."""
    lines, line = [], first
    for part in parts:
        if len(line) + len(part) > width and line.strip():
            lines.append(line.rstrip())
            line = " " * indent + part.lstrip()
        else:
            line += part
    lines.append(line.rstrip())
    return lines


def chain_lines(chain, width=100, function="L"):
    """A chain in plain text: `lhs = terms   [rules]`, aligned at =, lines broken to fit `width` columns."""
    lhs = text(chain.lhs)
    title = "".join(text(p) if isinstance(p, sp.Basic) else p for p in chain.title)
    note = "".join(text(p) if isinstance(p, sp.Basic) else p for p in chain.note)
    remarks = "; ".join(s for s in (chain.where, note) if s)
    out = wrap_lines([title + (f" ({remarks})" if remarks else "") + ":"], width, 2)
    pad, before = len(lhs) + 2, ()
    for k, line in enumerate(chain.lines):
        terms = [text(t) for t in line.terms]
        kept = carried(line.terms, before)
        if kept and pad + 5 + sum(map(len, terms)) + 3 * len(terms) > width:
            terms = ["…"] + terms[kept:]   # the terms carried unchanged (already read off), once as …
        before = line.terms
        parts = [terms[0]] + [f" - {t[1:]}" if t.startswith("-") else f" + {t}" for t in terms[1:]]
        rules = f"   [{', '.join(r.name for r in line.rules)}]" if line.rules else ""
        head = f"  {lhs if k == 0 else ' ' * len(lhs)} = "
        body = _wrap(head, parts, pad + 5, width)
        if len(body[-1]) + len(rules) <= width:
            body[-1] += rules
        elif rules:
            body.append(" " * max(0, min(pad + 5, width - len(rules.strip()))) + rules.strip())
        out += body
    for symbol, E, kind in chain.results:
        name = text(symbol) if kind.startswith("delta") or kind == "form" else f"∂{function}/∂{text(symbol)}"
        name = f"contribution to {name} through {text(chain.via)}" if kind.endswith("contribution") else name
        out += _wrap(f"  {' ' * len(lhs)} ⇒ {name} = ", [text(E)], pad + 5, width)
    for symbol, term, index, first, last in chain.sums:   # a whole result that sums a generic step's terms
        out = [line.replace(f"∂{function}/∂{text(symbol)} = ", f"∂{function}/∂{text(symbol)} = Σ_{index}={first}…{last} "
                            f"{text(term)} = ", 1) for line in out]
    remark = chain.remark if isinstance(chain.remark, str) else "".join(
        p if isinstance(p, str) else text(p) for p in chain.remark)
    return out + (wrap_lines([remark], width, 0) if remark else [])


@dataclass(frozen=True)
class ScalarRule:
    """One line of the scalar chain rule: ∂C/∂target = Π ∂num/∂den · ∂C/∂last = value (every quantity a number)."""

    target: sp.Symbol
    factors: tuple     # ((num, den), …): the local derivatives, then the derivative of C already known
    values: tuple      # the value of each local derivative
    known: sp.Symbol   # the variable whose ∂C/∂known closes the chain (None for ∂C/∂a^(L) itself)
    value: sp.Basic    # ∂C/∂target in full, in a, w, b, y


def _leading_positive(e, y):
    """A product as seed 003 writes it: each factor (a − 1) as (1 − a) and (y − a) as (a − y), the signs collected
    in front: 2 a⁽¹⁾ a⁽²⁾ (1 − a⁽²⁾)(a⁽²⁾ − y)."""
    sign, factors = 1, []
    for f in sp.Mul.make_args(sp.factor(e)):
        base, power = f.as_base_exp()
        constant, rest = base.as_coeff_Add() if base.is_Add else (0, base)
        flip = base.is_Add and (constant.is_negative or (constant == 0 and (base.coeff(y) or 0) > 0))
        if flip:
            base, sign = -base, sign * (-1) ** power
        factors.append(base ** power)
    coeff = sp.Mul(*[f for f in factors if f.is_number]) * sign
    return sp.Mul(coeff, *[f for f in factors if not f.is_number], evaluate=False)


def is_scalar(net):
    """Whether every quantity of `net` is a number: one unit per layer, one sample."""
    return net.m == 1 and all(n == 1 for n in net.sizes)


def scalar_chain(net, loss_symbol="C"):
    """The scalar chain rule down a network of single units (seed 003): ∂C/∂a^(L), then per layer ∂C/∂z, ∂C/∂w,
    ∂C/∂b and ∂C/∂a^(l−1), each the product of local derivatives, by SymPy's scalar calculus."""
    L, C = net.L, sp.Symbol(loss_symbol)
    a = {l: sp.Symbol(f"a({l})", real=True) for l in range(L + 1)}
    z = {l: sp.Symbol(f"z({l})", real=True) for l in range(1, L + 1)}
    w = {l: sp.Symbol(f"w({l})", real=True) for l in range(1, L + 1)}
    b = {l: sp.Symbol(f"b({l})", real=True) for l in range(1, L + 1)}
    y = sp.Symbol("y", real=True)
    cost = net.loss_entry.per_entry(a[L], y)
    rows = [ScalarRule(a[L], (), (), None, _leading_positive(sp.diff(cost, a[L]), y))]
    known = {a[L]: rows[0].value}
    for l in range(L, 0, -1):
        layer = net.layers[l - 1]
        x = sp.Symbol("x", real=True)
        slope = derivative(layer.activation.body.xreplace({ELT: x}), x)
        # σ′ written with the activation's own value where it can be: σ(z)(1 − σ(z)) = a(1 − a)
        slope = slope.xreplace({layer.activation.body.xreplace({ELT: x}): a[l]}).xreplace({x: z[l]})
        rows.append(ScalarRule(z[l], ((a[l], z[l]),), (slope,), a[l], _leading_positive(slope * known[a[l]], y)))
        known[z[l]] = rows[-1].value
        inputs = [(w[l], a[l - 1])] + ([(b[l], sp.S.One)] if layer.b is not None else [])
        inputs += [(a[l - 1], w[l])] if l > 1 else []
        for var, local in inputs:
            rows.append(ScalarRule(var, ((z[l], var),), (local,), z[l], _leading_positive(local * known[z[l]], y)))
            known[var] = rows[-1].value
    return C, tuple(rows)


@dataclass(frozen=True)
class View:
    """What definition_chain reads of a network (its definitions, the δ named, the parameters): a part of one."""

    forward: dict
    deltas: dict
    parameters: tuple


def definition_chain(net, N, delta, title):
    """(chain, {X: G}) for a named intermediate N of a network of blocks: tr(δ_Nᵀ dN) = … = Σ tr(G_Xᵀ dX) by N's
    definition and its rules, each term brought to the names it reads (an intermediate without a δ of its own,
    A = σ(Z), expanded in turn); nothing read off yet (read_off does, knowing every chain); None where N reads only
    the inputs."""
    named, forward = set(net.deltas), net.forward
    leaves = set(net.parameters) | named   # the inputs are constants: no term for dX

    def stops(E):
        return sorted((X for X in E.atoms(sp.MatrixSymbol) if X in leaves or X in forward), key=str)

    if not stops(forward[N]):
        return None   # N reads only the inputs (μ of a first layer norm): nothing passes back through it
    order = sorted(set(forward) | leaves, key=str)
    # each definition's expression written by its name where it reappears (softmax(S) as P)
    b = _Builder([form(delta, d(N))], {E: Z for Z, E in forward.items() if not isinstance(E, sp.MatrixSymbol)})
    b.expand([N], set(stops(forward[N])), forward[N])
    adjoint = dict(b.gather(order))
    while True:
        inner = [X for X in adjoint if X in forward and X not in named]
        if not inner:
            break
        X = inner[0]
        b.expand([X], set(stops(forward[X])), forward[X])
        del adjoint[X]
        adjoint.update(b.gather(order, only=stops(forward[X])))
    return Chain(title, form(delta, d(N)), tuple(b.lines), (), via=N), adjoint


def read_off(net, wanted, pieces):
    """The chains of `pieces` [(chain, {X: G})] with their results: G as δ_X (∂L/∂X for a parameter) where one chain
    reaches X; where several do, each G a contribution to it, and after the last their sum, the whole result.
    Only the X in `wanted` (what the δ recursion and the gradients need) are read off."""
    reach = {}
    for _, adjoint in pieces:
        for X in adjoint:
            reach[X] = reach.get(X, 0) + 1
    parts, chains = {}, []
    for chain, adjoint in pieces:
        results = []
        for X, G in adjoint.items():
            if X not in wanted:
                continue
            symbol, kind = (net.deltas[X], "delta") if X in net.deltas else (X, "gradient")
            if reach[X] == 1:
                results.append((symbol, G, kind))
                continue
            parts.setdefault(X, []).append(G)
            results.append((symbol, G, kind + " contribution"))
            if len(parts[X]) == reach[X]:   # the last chain that reaches X: the whole is the sum of its parts
                results.append((symbol, matadd(*parts[X]), kind))
        chains.append(replace(chain, results=tuple(results)))
    return chains


def loss_chain(net, R, delta):
    """dL = … = tr(δ_Rᵀ dR) for a network whose last block is not a dense layer: the loss's rules down to R."""
    rules = []
    b = _Builder([differential(net.data_loss(), {R}, rules)], {})
    b.push(rules)
    G = b.gather([R])[R]
    return Chain(("The loss: from ", LOSS, " to ", delta), d(LOSS), tuple(b.lines), ((delta, G, "delta"),))


# block kind -> view(net, block, chains): the block's chains with its repeated structure (step t, tap j) derived once,
# generically; the views_* modules enter theirs
VIEWS: dict[str, Callable] = {}


@once
@memoised
def block_chains(result):
    """The chains of a network of blocks: the loss's, the weight-decay term's, then one per named intermediate from
    the output down whose δ the recursion needs (each block's steps under its title), their results read off."""
    net = result.network
    out = net.output
    if out is not None:   # A = σ(Z) ends the network: from L to δ of Z
        first = output_chain(out, out.delta, net.data_loss(), ("The output layer: from ", LOSS, " to ", out.delta))
    else:
        first = loss_chain(net, net.result, net.deltas[net.result])
    pieces = []
    if net.weight_decay != 0 and net.weights:   # (λ/2) Σ ‖W‖² is 0 without weights (layer norms only)
        chain, adjoint = decay_chain(list(net.weights), net.weight_decay)
        pieces.append((replace(chain, via=chain.lhs.args[0]), adjoint))
    owner = {Z: block for block in flatten(net.blocks) for Z, _ in block.definitions}
    needed = set(result.deltas)
    for N in reversed(list(net.forward)):
        if net.deltas.get(N) in needed:
            delta = net.deltas[N]
            pieces.append(definition_chain(net, N, delta, (owner[N].title + ": from ", delta, " back")))
    wanted = {*net.parameters, *(X for X, delta in net.deltas.items() if delta in needed)}
    chains = read_off(net, wanted, [p for p in pieces if p is not None])
    for block in flatten(net.blocks):
        if block.kind in VIEWS:
            chains = VIEWS[block.kind](net, block, chains)
    return (first, *unreached(net, chains, result.gradients))


def _chains_of(chains, symbols):
    """The chains that start from the δ of one of `symbols`."""
    return [c for c in chains if c.via in symbols]


def _listed(symbols):
    """A, B and C: the symbols with their separators, as a chain's note reads them."""
    out = []
    for k, P in enumerate(symbols):
        out += [", " if 0 < k < len(symbols) - 1 else " and " if k else "", P]
    return [p for p in out if p != ""]


def unreached(net, chains, gradients):
    """`chains` with ∂L/∂P = 0 read off, in the first chain of P's block, for each parameter P no chain reaches: one
    the loss does not depend on (an LSTM's recurrent weights over one step multiply H_0 = 0 only)."""
    stated = {symbol for c in chains for symbol, _, kind in c.results if kind == "gradient"}
    for block in flatten(net.blocks):
        idle = [P for P in block.parameters if P not in stated and isinstance(gradients[P.name], sp.ZeroMatrix)]
        mine = _chains_of(chains, {Z for Z, _ in block.definitions})
        if idle and mine:
            one = replace(mine[0], results=(*mine[0].results, *((P, sp.ZeroMatrix(*P.shape), "gradient")
                                                                for P in idle)),
                          note=mine[0].note or ("the loss does not depend on ", *_listed(idle), ": ",
                                                "its gradient is 0" if len(idle) == 1 else "their gradients are 0"))
            chains = [one if c is mine[0] else c for c in chains]
    return chains
