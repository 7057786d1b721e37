"""The textbook view of self-attention and layer norm: the heads of an attention layer derived once, for a generic
head h; alike layer norms derived once; each block ended by the compact form students know (the softmax's row-sum
term, layer norm's s ⊙ (g − mean g − N ⊙ mean(g ⊙ N))), each equal to what the chains derive."""
from dataclasses import replace

import sympy as sp

from ..core.expr import Select, d, hadamard, matadd, matmul, substitute, tp
from ..core.rules import DEFINITION
from ..engine.backward import form
from .blocks import flatten
from .forms import Formula
from .textbook import VIEWS, Chain, _Builder, View, _chains_of, differential, layer_range

HEAD = sp.Symbol("h", integer=True, positive=True)   # the generic head


def generic_chain(view, names, title):
    """(chain, {X: G}) from Σ_N tr(δ_Nᵀ dN) over `names` (one or several): each N written by its definition, then
    every term brought to tr(Gᵀ dX) (X a named matrix or a parameter of the view)."""
    leaves = set(view.parameters) | set(view.deltas)
    stop = {X for N in names for X in view.forward[N].atoms(sp.MatrixSymbol) if X in leaves}
    rewrite = {E: Z for Z, E in view.forward.items() if not isinstance(E, sp.MatrixSymbol)}
    start = [form(view.deltas[N], d(N)) for N in names]
    b = _Builder(start, rewrite)
    rules = [DEFINITION]
    mapping = {d(N): differential(view.forward[N], stop, rules) for N in names}   # dN = d(its definition)
    b.terms = [substitute(t.xreplace(mapping), rewrite) for t in b.terms]
    b.push(rules)
    adjoint = b.gather([*view.deltas, *view.parameters])
    return Chain(title, sp.Add(*start), tuple(b.lines), (), via=names[0]), adjoint


def _replace(chains, mine, new):
    """`chains` with `mine` replaced by `new`, where the first of them was."""
    k = chains.index(mine[0])
    return [*chains[:k], *new, *[c for c in chains[k:] if c not in mine]]


def _wholes(chains):
    """{δ: expression} of the whole δ `chains` read off."""
    return {s: E for c in chains for s, E, kind in c.results if kind == "delta"}


def _reached(chains):
    """The symbols `chains` read a result or a contribution of."""
    return {s for c in chains for s, _, _ in c.results}


class Heads:
    """The heads of a self-attention layer: each head's symbols (Q_h, K_h, V_h, S_h, P_h, E_h and their δ), and
    the generic head h that stands for all of them."""

    KINDS = ("Q", "K", "V", "S", "P")

    def __init__(self, net, block):
        l, defs = block.index, block.definitions
        self.block, self.count = block, block.spec.heads
        self.Q, self.K, self.V = (Z for Z, _ in defs[:3])
        self.O, self.scale = defs[-2][0], block.spec.d_k
        heads = [defs[3 + 5 * k: 8 + 5 * k] for k in range(self.count)]
        self.concrete = [dict(zip(self.KINDS, (Z for Z, _ in h))) for h in heads]
        self.E = [next(iter(E.atoms(Select))) for (_, E), *_ in heads]
        first = self.concrete[0]
        self.generic = {k: sp.MatrixSymbol(f"{k}{l}_h", *first[k].shape) for k in self.KINDS}
        self.generic["E"] = sp.MatrixSymbol(f"E{l}_h", *self.E[0].shape)
        self.generic["O"] = sp.MatrixSymbol(f"O{l}_h", *self.O.shape)
        self.delta = {k: sp.MatrixSymbol(f"delta_{k}{l}_h", *first[k].shape) for k in self.KINDS}
        back = self.back(0)
        forward = {self.generic[k]: net.forward[first[k]].xreplace(back) for k in self.KINDS}
        # O = Σ_h O_h, O_h = P_h V_h E_h: head h's output put back in its columns
        term, = [t for t in sp.Add.make_args(net.forward[self.O]) if t.has(first["P"])]
        forward[self.generic["O"]] = term.xreplace(back)
        deltas = {**{self.generic[k]: self.delta[k] for k in self.KINDS}, self.generic["O"]: net.deltas[self.O],
                  **{M: net.deltas[M] for M in (self.Q, self.K, self.V)}}
        self.view = View(forward, deltas, ())

    def at(self, h):
        """{generic symbol: its symbol in head h} (h from 0)."""
        named = dict(self.block.deltas)
        out = {self.generic[k]: self.concrete[h][k] for k in self.KINDS}
        out.update({self.delta[k]: named[self.concrete[h][k]] for k in self.KINDS})
        out[self.generic["E"]] = self.E[h]
        return out

    def back(self, h):
        """{symbol of head h: the generic symbol}."""
        return {v: k for k, v in self.at(h).items()}

    def names(self):
        """Every head's symbols, concrete."""
        return {M for h in range(self.count) for M in self.at(h).values()}


def heads_of(net):
    """The Heads of every self-attention layer of `net` with more than one head."""
    return [Heads(net, b) for b in flatten(net.blocks) if b.kind == "self-attention" and b.spec.heads > 1]


def generic_meanings(net):
    """{generic head's symbol: what it is in words}."""
    out = {}
    for heads in heads_of(net):
        g, l, k = heads.generic, heads.block.index, heads.scale
        by = "" if net.layout == "AW" else " (rows with samples as columns)"
        out.update({g["Q"]: f"the queries of head h (layer {l})", g["K"]: "the keys of head h",
                    g["V"]: "the values of head h", g["S"]: "the attention scores of head h",
                    g["P"]: "the attention weights of head h: each query's weights sum to 1",
                    g["O"]: "head h's output, in its columns of O",
                    g["E"]: f"the {k} × {k} identity in columns {k}(h − 1) + 1, …, {k}h and zeros elsewhere: "
                            f"multiplied on the right by its transpose, Q keeps head h's {k} columns, and so do K "
                            f"and V{by}"})
    return out


def written(net, items):
    """`items` [(symbol, expression or None)] of a network's definitions, δ or symbols with each head's written once,
    for the generic head h, where every head's expression is its copy of the generic one: [(symbol, expression,
    where)], where "for h = 1, …" for the generic head's; among definitions, O_h = P_h V_h E_h before O = Σ_h O_h."""
    items = dict(items)
    generic, skip = {}, set()
    for heads in heads_of(net):
        note = f"for h = {layer_range(heads.count)}"
        first = heads.back(0)
        for Z, G in first.items():   # each symbol of head 1 (Q_1, …, their δ, E_1) and its generic G
            if Z not in items:
                continue
            E = items[Z].xreplace(first) if items[Z] is not None else None
            copies = [(heads.at(k)[G], heads.back(k)) for k in range(1, heads.count)]
            if all(M in items and (E is None or items[M].xreplace(back) == E) for M, back in copies):
                generic[Z] = [(G, E, note)]
                skip.update(M for M, _ in copies)
        if heads.O in items:   # O = Σ_h O_h, each head's term O_h = P_h V_h E_h
            O_h = heads.generic["O"]
            generic[heads.O] = [(O_h, heads.view.forward[O_h] if items[heads.O] is not None else None, note),
                                (heads.O, sp.Sum(O_h, (HEAD, 1, heads.count)) if items[heads.O] is not None else None, "")]
    return [row for Z, E in items.items() if Z not in skip for row in generic.get(Z, [(Z, E, "")])]


def generic_heads(net, block, chains):
    """`chains` with the chains of an attention layer's heads (from δ_O back to δ_Q, δ_K, δ_V) replaced by those of a
    generic head h: O_h = P_h V_h E_h, P_h = softmax(S_h), S_h = Q_h K_hᵀ/√d_k, Q_h = Q E_hᵀ, …; and the chains from
    δ_Q, δ_K, δ_V by one (they read the same input)."""
    if block.spec.heads > 1:
        chains = _heads(net, block, chains)
    return _queries_keys_values(net, block, chains)


def _heads(net, block, chains):
    heads = Heads(net, block)
    mine = _chains_of(chains, {heads.O} | heads.names())
    if not mine or any(c.instances or c.sums for c in mine):
        return chains
    g, view, H = heads.generic, heads.view, heads.count
    title = block.title.split(":")[0] + ": self-attention, head h: from "
    instances = tuple(heads.at(h) for h in range(H))
    where = f"for h = {layer_range(H)}"
    new = []
    chain, adjoint = generic_chain(view, [g["O"]], (title, net.deltas[heads.O], " back"))
    note = ("the heads' outputs add up, ", heads.O, " = ", sp.Sum(g["O"], (HEAD, 1, H)), ", so ",
            net.deltas[heads.O], " is the δ of each head's term ", g["O"], " = ", view.forward[g["O"]])
    new.append(replace(chain, results=tuple((view.deltas[X], adjoint[X], "delta") for X in (g["P"], g["V"])),
                       note=note))
    chain, adjoint = generic_chain(view, [g["P"]], (title, heads.delta["P"], " back"))
    P, dP = g["P"], heads.delta["P"]
    new.append(replace(chain, results=((heads.delta["S"], adjoint[g["S"]], "delta"),),
                       remark=softmax_remark(P, view.forward[P], dP)))
    chain, adjoint = generic_chain(view, [g["S"]], (title, heads.delta["S"], " back"))
    new.append(replace(chain, results=tuple((view.deltas[X], adjoint[X], "delta") for X in (g["Q"], g["K"]))))
    chain, adjoint = generic_chain(view, [g["Q"], g["K"], g["V"]],
                                   (title, heads.delta["Q"], ", ", heads.delta["K"], ", ", heads.delta["V"], " back"))
    wholes = _wholes(mine)
    targets = (heads.Q, heads.K, heads.V)
    new.append(replace(chain, results=tuple((net.deltas[M], wholes[net.deltas[M]], "delta") for M in targets),
                       sums=tuple((net.deltas[M], adjoint[M], "h", 1, H) for M in targets)))
    new = [replace(c, instances=instances, where=where) for c in new]
    return _replace(chains, mine, new)


def _queries_keys_values(net, block, chains):
    """The chains from δ_Q, δ_K, δ_V back as one: tr(δ_Qᵀ dQ) + tr(δ_Kᵀ dK) + tr(δ_Vᵀ dV) = …, the input's δ read
    off whole (left as they are where another chain reaches the input too)."""
    Q, K, V = (Z for Z, _ in block.definitions[:3])
    mine = _chains_of(chains, {Q, K, V})
    if len(mine) != 3:
        return chains
    others = _reached([c for c in chains if c not in mine])
    named = [M for M in (Q, K, V, block.input) if M in net.deltas]   # the input has a δ unless it is X
    view = View({M: net.forward[M] for M in (Q, K, V)}, {M: net.deltas[M] for M in named}, block.parameters)
    chain, adjoint = generic_chain(view, [Q, K, V], (block.title.split(":")[0] + ": self-attention: from ",
                                                     net.deltas[Q], ", ", net.deltas[K], ", ", net.deltas[V], " back"))
    results = []
    for X, G in adjoint.items():
        symbol, kind = (net.deltas[X], "delta") if X in net.deltas else (X, "gradient")
        if symbol in others:
            return chains   # the input is read elsewhere too: its parts stay the contributions they are
        results.append((symbol, G, kind))
    return _replace(chains, mine, [replace(chain, results=tuple(results))])


def row_sum(P, dP, axis):
    """The row-sum term of the softmax's backward pass: each query's Σ_k P_qk δ_P,qk over its entries, (δ_P ⊙ P) 𝟏𝟏ᵀ
    where a query is a row (axis 1), 𝟏𝟏ᵀ (δ_P ⊙ P) where it is a column."""
    rows, cols = P.shape
    weighted = hadamard(dP, P)
    return (matmul(weighted, sp.OneMatrix(cols, 1), sp.OneMatrix(1, cols)) if axis == 1
            else matmul(sp.OneMatrix(rows, 1), sp.OneMatrix(1, rows), weighted))


def softmax_compact(P, dP, axis):
    """δ_S of P = softmax(S) per query, in the compact form P ⊙ (δ_P − the row-sum term)."""
    return hadamard(P, matadd(dP, -row_sum(P, dP, axis)))


def softmax_remark(P, P_def, dP):
    """The compact form of the softmax's backward pass in words: the row-sum term, and per query the Jacobian."""
    query = "row" if P_def.axis == 1 else "column"
    p, g = sp.MatrixSymbol("p", P.rows, 1), sp.MatrixSymbol("g", P.rows, 1)
    return (f"This is the softmax's compact form: the {query}-sum term ", row_sum(P, dP, P_def.axis),
            f" holds each query's mean of its {query} of ", dP,
            f" weighted by its weights; for one query, with p its {query} of ", P, " and g its ", query,
            " of ", dP, " (each as a column)" if query == "row" else "", f", its {query} of the δ of the scores is ",
            matmul(matadd(sp.DiagMatrix(p), -matmul(p, tp(p))), g), ".")


# what a norm's statistics run over: (a row of the matrix in layout AW, the unit, what it holds, how many of them)
NORM_WORDS = {"layer norm": (True, "sample", "features", "features"),
              "batch norm": (False, "feature", "values over the samples", "samples")}


def alike_norms(net, block, chains):
    """`chains` with a layer or batch norm derived as another of its kind was (the one derived furthest, first in the
    document) replaced by what it reads off, "as layer k"; the one derived ends with the compact form of what it
    passes back."""
    norms = [b for b in _norms(net, block.kind) if _chains_of(chains, _names(b))]
    if block not in norms:
        return chains
    model = max(norms, key=lambda b: (len(_chains_of(chains, _names(b))), -min(
        chains.index(c) for c in _chains_of(chains, _names(b)))))
    mine = _chains_of(chains, _names(block))
    if block is model:
        compact = norm_compact(net, block, chains)
        if compact is None:
            return chains
        part, compact, g, n, spread = compact
        last = mine[-1]
        (mu, _), (C, _), (v, _), (s, _), (N, _), _ = block.definitions
        ones = sp.OneMatrix(n, 1)
        rows = _along_rows(net, block)
        sums = matmul(N, ones) if rows else matmul(tp(ones), N)
        by, (_, unit, held, over) = "row" if rows else "column", NORM_WORDS[block.kind]
        remark = ("The last line is what the layer passes back to its input, its two contributions, in "
                  f"{block.kind}'s compact form. It follows on putting ", net.deltas[s], ", ", net.deltas[v], " and ",
                  net.deltas[mu], " into them, with ", Formula(r"⟨0⟩ = ⟨1⟩ \oslash (⟨2⟩)", "⟨0⟩ = ⟨1⟩ ⊘ (⟨2⟩)", C, N,
                                                             spread),
                  " (the definition of ", N, ") and ", Formula(r"⟨0⟩ = \mathbf{0}", "⟨0⟩ = 0", sums),
                  f" (each {unit}'s normalised {held} sum to zero). Per {unit} i, with g and n its ", by, "s of ", g,
                  " and ", N, " and ", Formula("s_i", "s_i"), " its entry of ", s, ", it passes back ",
                  Formula(r"s_i\,(g - \operatorname{mean}(g) - \operatorname{mean}(g \odot n)\, n)",
                          "s_i (g − mean(g) − mean(g ⊙ n) n)"),
                  ", each mean over its ", n, f" {over}.")
        return [replace(c, results=(*c.results, (part, compact, "form")), remark=remark) if c is last else c
                for c in chains]
    # a chain that reads off a parameter's gradient keeps its lines (every gradient derived in the body); the others
    # state what they read off, by the same steps as the other's: as one chain where no result is a contribution
    # (each of which names the chain it passes through)
    derived = [c for c in mine if any(kind == "gradient" for _, _, kind in c.results)]
    stated = [replace(c, title=(f"{block.title}: from ", net.deltas[c.via], f" back, as in layer {model.index}"),
                      lines=()) for c in mine if c not in derived]
    if block.input in net.inputs:   # the chain stops at N: below it are only the inputs, which take no gradient
        N = block.definitions[4][0]
        derived = [replace(c, remark=("The term in ", d(N), " is not taken further: ", N, " depends only on the "
                                      "inputs ", block.input, ", which take no gradient.")) for c in derived]
    if stated and not any(kind.endswith("contribution") for c in stated for _, _, kind in c.results):
        stated = [replace(stated[0], results=tuple(r for c in stated for r in c.results))]
    return _replace(chains, mine, derived + stated)


def _norms(net, kind="layer norm"):
    return [b for b in flatten(net.blocks) if b.kind == kind]


def _along_rows(net, block):
    """Whether the norm's statistics run along each row: a layer norm's in layout AW (a sample a row), a batch
    norm's in the others (a feature a row)."""
    return _rows(net) == NORM_WORDS[block.kind][0]


def _names(block):
    return {Z for Z, _ in block.definitions}


def norm_compact(net, block, chains):
    """(what the layer norm passes back to its input, δ_C + (1/n) δ_μ spread over the features, the compact form
    s ⊙ (g − mean g − N ⊙ mean(g ⊙ N)) per sample with g = δ_N, g, the number of features n, s spread over the
    features: s 1ᵀ or 1 sᵀ), or None where its chains stop before the input (the network's inputs X); a batch norm's
    alike, per feature over its n samples."""
    (mu, _), (C, C_def), _, (s, _), (N, N_def), _ = block.definitions
    read = _reached(chains)
    if not all(M in net.deltas and net.deltas[M] in read for M in (mu, C, N)):
        return None
    rows = _along_rows(net, block)
    g, n = net.deltas[N], (N.cols if rows else N.rows)
    spread, = [f for f in N_def.args if f.has(s)]   # s 1ᵀ, or 1 s with samples as columns
    term, = [t for t in C_def.args if t.has(mu)]     # −μ 1ᵀ, or −1 μ: C = X − μ spread over the features
    part = matadd(net.deltas[C], -term.xreplace({mu: net.deltas[mu]}) / n)

    def mean(M):   # each sample's mean over its n features (a feature's over its n samples), spread over them
        ones = matmul(sp.OneMatrix(n, 1), sp.OneMatrix(1, n))
        return (matmul(M, ones) if rows else matmul(ones, M)) / n

    return part, hadamard(spread, matadd(g, -mean(g), -hadamard(N, mean(hadamard(g, N))))), g, n, spread


def _rows(net):
    """Whether each sample is a row (layout AW)."""
    return net.layout == "AW"


VIEWS["self-attention"] = generic_heads
VIEWS["layer norm"] = alike_norms
