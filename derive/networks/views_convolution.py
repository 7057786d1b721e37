"""A 1-D convolution derived once for a generic tap j: its chains, forward pass and symbols with Σ_j over the taps,
and its gradients named as students know them: ∂L/∂K the correlation of the input with δ, the input's δ the transposed
convolution of δ with the kernel."""
from dataclasses import replace

import sympy as sp
from sympy.printing.precedence import PRECEDENCE

from ..core.expr import Select, matmul, tp
from .forms import Formula
from .textbook import VIEWS, View, definition_chain

# Σ_j binds looser than a product (parenthesized in one, in a transpose, in ⊙) and tighter than a sum
_SUM = (PRECEDENCE["Add"] + PRECEDENCE["Mul"]) // 2


class _Over:
    """Σ_{j=first}^{last} term: term written for a generic tap j, and the symbols it stands for at each tap."""

    precedence = _SUM

    def __new__(cls, term, index, taps):
        return sp.Basic.__new__(cls, term, index, sp.Tuple(*(sp.Dict(m) for m in taps)))

    @property
    def term(self):
        return self.args[0]

    @property
    def shape(self):
        return self.args[0].shape

    def instances(self):
        """term at each tap, in order."""
        return [self.term.xreplace(dict(m)) for m in self.args[2]]

    def _latex(self, printer):
        last = len(self.args[2]) - 1
        return r"\sum\nolimits_{%s=0}^{%d} %s" % (printer._print(self.args[1]), last,
                                         printer.parenthesize(self.term, _SUM, strict=True))

    def _sympystr(self, printer):
        return f"Σ_{self.args[1]}={0}…{len(self.args[2]) - 1} {printer.parenthesize(self.term, _SUM, strict=True)}"


class MatrixOver(_Over, sp.MatrixExpr):
    """Σ_j of a matrix term."""


class ScalarOver(_Over, sp.Expr):
    """Σ_j of a scalar term (a trace)."""


def over(term, taps):
    """Σ_j term over `taps` ({generic symbol: its symbol at tap j}, one per tap)."""
    return (MatrixOver if term.is_Matrix else ScalarOver)(term, sp.Symbol("j", integer=True), taps)


def unfold(E):
    """E with each Σ_j written out: the sum of its instances."""
    return E.replace(lambda n: isinstance(n, _Over), lambda n: sp.MatAdd(*n.instances()) if n.is_Matrix
                     else sp.Add(*n.instances()))


def _group(terms, taps):
    """The terms with the instances of one generic term, one at every tap, written Σ_j of it once (where the first
    of them was)."""
    back = [{v: k for k, v in m.items()} for m in taps]
    generic = []   # (the generic term, its tap) of each term that reads one tap's symbols only, else None
    for t in terms:
        at = [j for j, m in enumerate(taps) if any(t.has(v) for v in m.values())]
        generic.append((t.xreplace(back[at[0]]), at[0]) if len(at) == 1 else None)
    out, done = [], set()
    for t, g in zip(terms, generic):
        every = g is not None and sorted(h[1] for h in generic if h and h[0] == g[0]) == list(range(len(taps)))
        if not every:
            out.append(t)
        elif g[0] not in done:
            done.add(g[0])
            out.append(over(g[0], taps))
    return out


def fold(E, taps):
    """E with every sum over the taps of one generic term written Σ_j of it."""
    if not E.args or isinstance(E, (Select, sp.MatrixSymbol)):
        return E
    args = [fold(a, taps) for a in E.args]
    if isinstance(E, (sp.MatAdd, sp.Add)):
        args = _group(args, taps)
        if len(args) == 1:
            return args[0]
        return sp.MatAdd(*args) if E.is_Matrix else sp.Add(*args, evaluate=False)
    return E.func(*args) if args != list(E.args) else E


def taps(block):
    """[{generic symbol: its symbol at tap j}] for j = 0, …, w − 1: S_j, E_j, K_j and δ_{K,j}."""
    l, named = block.index, block.deltas[-1][0]
    terms = sp.Add.make_args(dict(block.definitions)[named])
    out = []
    for (Kj, dKj), (_, Ej) in zip(block.deltas[:-1], block.definitions):
        E, = Ej.atoms(Select)
        S, = next(t for t in terms if t.has(Kj)).atoms(Select)
        out.append({sp.MatrixSymbol(f"S{l}_j", *S.shape): S, sp.MatrixSymbol(f"E{l}_j", *E.shape): E,
                    sp.MatrixSymbol(f"K{l}_j", *Kj.shape): Kj, sp.MatrixSymbol(f"delta_K{l}_j", *dKj.shape): dKj})
    return out


def _shift(spec):
    """The input step that tap j reads for output step t: "2t + j − 1"."""
    s, p = spec.stride, spec.padding
    return f"{s if s > 1 else ''}t + j" + (f" − {p}" if p else "")


def generic_taps(net, block, chains):
    """`chains` with a convolution's chains written once for a generic tap j: the chain from its δ back with Σ_j
    over the taps (δ_{K,j} read off for a generic j), and for the per-tap chains one from δ_{K,j} back (the
    contribution E_jᵀ δ_{K,j}, then ∂L/∂K = Σ_j of them), closed by the compact forms: correlation and transposed
    convolution."""
    maps = taps(block)
    w = len(maps)
    if w < 2:
        return chains
    named = block.deltas[-1][0]
    kernels = {Kj for Kj, _ in block.deltas[:-1]}
    main = next((c for c in chains if c.via == named), None)
    mine = [c for c in chains if c.via in kernels]
    if main is None or len(mine) != w:
        return chains
    j = ", ".join(map(str, range(w))) if w <= 3 else f"0, …, {w - 1}"   # the taps
    lines = tuple(replace(line, terms=tuple(_group([fold(t, maps) for t in line.terms], maps)))
                  for line in main.lines)
    results, seen = [], set()
    for symbol, E, kind in main.results:
        generic = next((k for m in maps for k, v in m.items() if v == symbol), None)
        if generic is None:
            results.append((symbol, fold(E, maps), kind))
        elif generic not in seen:
            seen.add(generic)
            m = next(m for m in maps if m[generic] == symbol)
            results.append((generic, E.xreplace({v: k for k, v in m.items()}), kind))
    main = replace(main, lines=lines, results=tuple(results), instances=tuple(maps), delta_where=f"for j = {j}",
                   note=(*main.note, "the sums run over the taps ", f"j = {j}"))
    K, _ = block.parameters
    g = {v: k for k, v in maps[0].items()}
    Kj, dKj = g[block.deltas[0][0]], g[block.deltas[0][1]]
    view = View({Kj: block.definitions[0][1].xreplace(g)}, {Kj: dKj}, block.parameters)
    chain, adjoint = definition_chain(view, Kj, dKj, (block.title + ": from ", dKj, " back, at a tap j"))
    whole = next(E for c in mine for s, E, kind in c.results if kind == "gradient")
    tap = replace(chain, results=((K, adjoint[K], "gradient contribution"), (K, whole, "gradient")),
                  instances=tuple(maps), sums=((K, adjoint[K], "j", 0, w - 1),), where=f"for j = {j}",
                  remark=compact(net, block, dKj))
    out = []
    for c in chains:
        if c is mine[0]:
            out.append(tap)
        elif c not in mine:
            out.append(main if c.via == named else c)
    return out


def _gradient(net, block, S, K):
    """Tap j's term of the gradient with respect to the input: S_jᵀ δ K_jᵀ (AW), K_jᵀ δ S_j (WA), K_j δ S_j (WtA)."""
    delta = block.deltas[-1][1]
    if net.layout == "AW":
        return matmul(tp(S), delta, tp(K))
    return matmul(tp(K), delta, S) if net.layout == "WA" else matmul(K, delta, S)


def compact(net, block, dKj):
    """The compact forms, as a remark: tap j's rows of ∂L/∂K, δ_{K,j}, the correlation of the input with δ; and the
    input's gradient Σ_j S_jᵀ δ K_jᵀ the transposed convolution of δ with the kernel (the full correlation of δ,
    stride-dilated, with the kernel flipped in time)."""
    spec, A, delta = block.spec, block.input, block.deltas[-1][1]
    s, p, w = spec.stride, spec.padding, len(block.deltas) - 1
    aw, wa = net.layout == "AW", net.layout == "WA"
    T, T_out = (A.rows, delta.rows) if aw else (A.cols, delta.cols)
    shift = _shift(spec).replace("−", "-")

    def entry(k, time, channel):
        """Entry (step, channel) of the k-th expression: rows are steps in layout AW, columns otherwise."""
        return "(⟨%d⟩)_{%s}" % (k, f"{time},\\,{channel}" if aw else f"{channel},\\,{time}")

    def kernel(k, c, o):
        return "(⟨%d⟩)_{%s}" % (k, f"{o},\\,{c}" if wa else f"{c},\\,{o}")

    correlation = Formula(
        r"(⟨0⟩)_{%s} = \sum_{t=0}^{%d} %s\, %s" % (r"o,\,c" if wa else r"c,\,o", T_out - 1, entry(1, shift, "c"),
                                                 entry(2, "t", "o")),
        f"⟨0⟩[{'o, c' if wa else 'c, o'}] = Σ_t=0…{T_out - 1} ⟨1⟩[{_shift(spec)}, c] ⟨2⟩[t, o]", dKj, A, delta)
    padded = ["; a step of ", A, f" outside 0, …, {T - 1} is zero, the padding"] if p else []
    steps = f", u = 0, …, {T - 1} an input step" if A not in net.inputs else ""
    parts = [f"In entries (t = 0, …, {T_out - 1} an output step{steps}, c an input and o an output channel", *padded,
             "): tap j's rows of ", Formula(r"\partial L / \partial ⟨0⟩", "∂L/∂⟨0⟩", block.parameters[0]), " are ",
             correlation,
             ", the correlation of the input ", A, f" (padded by {p} zero step{'s' * (p > 1)} at each end)" if p else "",
             " with ", delta, f" dilated by {s} ({s - 1} zero step{'s' * (s > 2)} between its steps)" if s > 1 else ""]
    if A not in net.inputs:
        g = {v: k for k, v in taps(block)[0].items()}
        Kj, Sj = g[block.deltas[0][0]], next(k for k in g.values() if k.name.startswith("S"))
        transposed = Formula(
            r"%s_{%s} = \sum_{j=0}^{%d} \sum_{t:\ %s = u} \sum_{o} %s\, %s"
            % ("(⟨0⟩)", "u,\\,c" if aw else "c,\\,u", w - 1, shift, entry(1, "t", "o"), kernel(2, "c", "o")),
            f"(⟨0⟩)[u, c] = Σ_j Σ_(t: {_shift(spec)} = u) Σ_o ⟨1⟩[t, o] ⟨2⟩[c, o]",
            over(_gradient(net, block, Sj, Kj), taps(block)), delta, Kj)
        parts += ["; and the gradient with respect to the input, ", transposed,
                  ", is the transposed convolution of ", delta, " with the kernel: the full correlation of ", delta,
                  f" (with {s - 1} zero step{'s' * (s > 2)} between its steps)" if s > 1 else "",
                  f" with the kernel flipped in time (tap {w - 1}−j where the convolution has tap j) and its input "
                  "and output channels swapped", f", read from step {p} on" if p else ""]
    return (*parts, ".")


def presented(net, block):
    """(the concrete symbols it stands for, {concrete symbol: the generic symbol rows (symbol, meaning) in its
    place}, {concrete symbol: the generic forward rows (lhs, rhs, note) in its place}): K_j, E_j, S_j once for a
    generic tap j, Z as Σ_j."""
    maps = taps(block)
    w = len(maps)
    if w < 2:
        return None
    spec, l = block.spec, block.index
    g = {v: k for k, v in maps[0].items()}
    (K0, _), (_, E_def) = block.deltas[0], block.definitions[0]
    named = block.deltas[-1][0]
    S0 = next(k for k, v in maps[0].items() if isinstance(v, Select) and k.name.startswith("S"))
    E0 = next(k for k, v in maps[0].items() if isinstance(v, Select) and k is not S0)
    c_in = K0.rows if net.layout != "WA" else K0.cols
    T = maps[0][S0].n
    T_out = maps[0][S0].rows
    j = ", ".join(map(str, range(w))) if w <= 3 else f"0, …, {w - 1}"
    where = "row" if net.layout != "WA" else "column"
    # rows (or columns) of K numbered from 0, as the taps and the steps are
    symbols = [(g[K0], f"tap j of the kernel of layer {l}: {where}s {c_in}j{', …,' if c_in > 2 else ' and'} {c_in}j + {c_in - 1} of K "
                       f"(numbered from 0), for j = {j}" if c_in > 1 else
                f"tap j of the kernel of layer {l}: {where} j of K (numbered from 0), for j = {j}"),
               (E0, f"a constant: selects tap j's {where}s of the kernel"),
               (S0, f"a constant: row t (t = 0, …, {int(T_out) - 1}) selects input step {_shift(spec)}"
                    + (f" (a zero row outside 0, …, {T - 1}: padding)" if spec.padding else ""))]
    forward = {K0: [(g[K0], E_def.xreplace(g), f"for j = {j}")],
               named: [(named, fold(net.forward[named], maps), "")]}
    covered = {*(Kj for Kj, _ in block.deltas[:-1]), named, *(v for m in maps for v in m.values())}
    return covered, {K0: symbols, named: [(named, dict(block.meanings).get(named, ""))]}, forward


VIEWS["convolution"] = generic_taps
