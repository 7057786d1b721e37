"""check_derivation: a derivation written by hand, every row checked at random points, its results against the true
ones, the first wrong row named with the classic mistake behind it."""
import html
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..numeric import agreement, rounding_floor
from . import algebra
from .algebra import Node, Typer, evaluate, show, stencil, walk
from .errors import WrittenError
from .meaning import ExpressionMeaning, NetworkMeaning
from .syntax import read, rows

RTOL = 1e-6


@dataclass(frozen=True)
class Line:
    """The verdict on one row: right, wrong, "true, but does not follow" (equal to what the chain states, not to
    the step before it), or "shape" (sides of different shapes)."""

    line: int
    text: str
    verdict: str
    message: str = ""
    mistake: str = ""
    result: str = ""          # the result the row's chain states (δ⁽²⁾, ∂L/∂W⁽¹⁾), if it states one
    result_right: bool | None = None   # on the chain's last row: whether the result stated is the true one

    @property
    def right(self):
        return self.verdict == "right"


@dataclass
class Checked:
    """Every row's verdict, the first error, and the results stated against the true ones."""

    source: str
    subject: str
    lines: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def passed(self):
        return bool(self.lines) and all(line.right for line in self.lines)

    @property
    def first_error(self):
        return next((line for line in self.lines if not line.right), None)

    @property
    def results(self):
        """[(result, right)] for every chain that states a result."""
        return [(line.result, line.result_right) for line in self.lines if line.result_right is not None]

    def summary(self):
        """The grading row: lines right, lines, the first error (line: what), results right, results."""
        first = self.first_error
        return {"file": self.source, "lines_right": sum(line.right for line in self.lines), "lines": len(self.lines),
                "first_error": "" if first is None else f"line {first.line}: {first.mistake or first.message}",
                "results_right": sum(bool(r) for _, r in self.results), "results": len(self.results)}

    def to_json(self):
        return json.dumps({**asdict(self), "passed": self.passed, "summary": self.summary()}, indent=2,
                          sort_keys=True, ensure_ascii=False)

    def __str__(self):
        width = max((len(line.text) for line in self.lines), default=0)
        width = min(width, 60)
        out = [f"check_derivation: {self.source} ({self.subject})", *(f"  note: {n}" for n in self.notes)]
        for line in self.lines:
            mark = {"right": "ok", "wrong": "WRONG", "shape": "SHAPE"}.get(line.verdict, "TRUE, DOES NOT FOLLOW")
            text = line.text if len(line.text) <= width else line.text[:width - 1] + "…"
            out.append(f"  {line.line:>3}  {text:<{width}}  {mark}")
            for part in (line.message, f"mistake: {line.mistake}" if line.mistake else ""):
                if part:
                    out.append(f"{'':>7}{part}")
        s = self.summary()
        out.append(f"{s['lines_right']} of {s['lines']} lines right; {s['results_right']} of {s['results']} results "
                   f"right" + (f"; first error: {s['first_error']}" if s["first_error"] else ""))
        return "\n".join(out)

    def _repr_html_(self):
        cells = "".join(f"<tr><td>{line.line}</td><td><code>{html.escape(line.text)}</code></td>"
                        f"<td>{'ok' if line.right else '<b>' + html.escape(line.verdict) + '</b>'}</td>"
                        f"<td>{html.escape(line.mistake or line.message)}</td></tr>" for line in self.lines)
        return (f"<div class=verify><p>check_derivation: {html.escape(self.source)}</p><table><tr><th>line</th>"
                f"<th>row</th><th>verdict</th><th>why</th></tr>{cells}</table></div>")


def check_derivation(text: str, net: Any = None, *, f: str | None = None, where: dict | None = None,
                     wrt: str | None = None, input_layer: int = 0, names: dict | None = None, trials: int = 3,
                     seed: int = 0, kind: str = "auto", source: str = "derivation") -> Checked:
    """Check a derivation written by hand (text, Unicode or LaTeX; one equality or ⇒ per row, a row that starts
    with = continues the one before) on `net` (a chain of dense layers) or on the scalar function `f` of the symbols
    `where` ({name: (rows, cols) or None}). Every row is typed (shapes first), then each equality is compared at
    `trials` random points (differentials along random directions), and each stated result with the true one.
    A row that cannot be read is a WrittenError naming its line and column."""
    if (net is None) == (f is None):
        raise ValueError("check_derivation: give net= (a network) or f= with where= (an expression), one of them")
    meaning = NetworkMeaning(net, input_layer, names) if net is not None else ExpressionMeaning(f, where or {}, wrt,
                                                                                               names)
    subject = repr(net) if net is not None else f"f = {f}"
    report = Checked(source, subject)
    chains = _chains(rows(text, kind), meaning)
    if not chains:
        report.notes.append("no math rows found (display math in .tex/.md, or one equality per line in text)")
    rng = np.random.default_rng(seed)
    points = [meaning.draw(rng) for _ in range(trials)]
    for chain in chains:
        report.lines.extend(Chain(meaning, chain, points, rng).check())
    return report


def _chains(found, meaning):
    """[[(row, [(relation, tree)])]]: each row read; a row that starts with = continues the chain before it."""
    chains = []
    for row in found:
        sides = read(row, meaning.names)
        if sides[0][0] == "=":
            if not chains:
                raise WrittenError(row, row.column, "this row starts with = but continues nothing")
            chains[-1].append((row, sides))
        else:
            chains.append([(row, sides)])
    return chains


def _uses_l(tree):
    if isinstance(tree, tuple):
        if tree[0] == "name" and tree[3] is not None and tree[3][0] == "l":
            return True
        return any(_uses_l(t) for t in tree[2:])
    return False


class Chain:
    """One chain of equalities (a row and the rows continuing it), typed at each value of a generic layer l."""

    def __init__(self, meaning, chain, points, rng):
        self.meaning, self.chain, self.points, self.rng = meaning, chain, points, rng

    def typed(self, l):
        """[(row, [(relation, node)])] at layer l: the sides of a row unified with each other."""
        out = []
        for row, sides in self.chain:
            typer = Typer(self.meaning, row, l)
            nodes = [(relation, typer.type(tree)) for relation, tree in sides]
            out.append((row, [(relation, typer.finish(node)) for relation, node in nodes]))
        return out

    def layers(self):
        """[(l, typed chain)] for every l at which every symbol exists (just [(None, …)] without a generic l)."""
        if not any(_uses_l(tree) for _, sides in self.chain for _, tree in sides):
            return [(None, self.typed(None))]
        out, first = [], None
        for l in self.meaning.generic_layers():
            try:
                out.append((l, self.typed(l)))
            except WrittenError as e:
                first = first or e
        if not out:
            raise first
        return out

    def check(self):
        verdicts = {}   # row index -> Line
        results = None
        for l, typed in self.layers():
            sides = [(k, relation, node) for k, (row, nodes) in enumerate(typed) for relation, node in nodes]
            shaped = self._shapes(typed, sides, l)
            envs = [Env(self.meaning, point, self._sources(sides), self.rng) for point in self.points]
            values = [[evaluate(node, env) for env in envs] for _, _, node in sides] if not shaped else None
            head = sides[0][2]
            result = _result(self.meaning, head)
            for i in range(1, len(sides)):
                k = sides[i][0]
                if k in verdicts and not verdicts[k].right:
                    continue
                row = typed[k][0]
                if shaped and i in shaped:
                    verdicts[k] = Line(row.line, _text(row), "shape", shaped[i][0], shaped[i][1])
                    continue
                if shaped:
                    continue
                got, expected = values[i], values[i - 1]
                if _equal(got, expected):
                    verdicts.setdefault(k, Line(row.line, _text(row), "right"))
                    continue
                at = f" (at l = {l})" if l is not None else ""
                if i > 1 and _equal(got, values[0]):
                    verdicts[k] = Line(row.line, _text(row), "true, but does not follow",
                                       f"{show(self.meaning, sides[i][2])} equals {show(self.meaning, head)}{at}, but "
                                       f"not the step before it")
                    continue
                error = _error(got, expected)
                mistake = Diagnosis(self.meaning, envs, head).explain(sides[i][2], expected)
                verdicts[k] = Line(row.line, _text(row), "wrong",
                                   f"{show(self.meaning, sides[i][2])} ≠ {show(self.meaning, sides[i - 1][2])}{at}: "
                                   f"{error}", mistake)
            if result is not None and not shaped:
                right = len(sides) > 1 and _equal(values[-1], values[0])
                results = right if results is None else results and right
            elif result is not None:
                results = False
        lines = []
        for k, (row, nodes) in enumerate(self.chain):
            line = verdicts.get(k) or Line(row.line, _text(row), "right",
                                           "" if len(nodes) > 1 else "a single expression: nothing to compare")
            if result is not None:
                line = replace(line, result=result)
                if k == len(self.chain) - 1:
                    line = replace(line, result_right=bool(results))
            lines.append(line)
        return lines

    def _shapes(self, typed, sides, l):
        """{side index: (what is wrong, the classic mistake)} where a side's shape differs from the one before it."""
        out = {}
        for i in range(1, len(sides)):
            a, b = sides[i - 1][2].shape, sides[i][2].shape
            if _same_shape(a, b):
                continue
            at = f" at l = {l}" if l is not None else ""
            message = f"{show(self.meaning, sides[i][2])} is {algebra.shape_text(b)}, but " \
                      f"{show(self.meaning, sides[i - 1][2])} is {algebra.shape_text(a)}{at}"
            mistake = ""
            if a is not None and b is not None:
                if _same_shape(a, b[::-1]):
                    mistake = "a transpose, or the factors in the wrong order: the sides have each other's shape " \
                              "((A B)ᵀ = Bᵀ Aᵀ)"
                elif str(a[1]) == "1" and _same_shape(a[0], b[0]) and str(b[1]) == str(self.meaning.__dict__.get(
                        "samples", "")):
                    mistake = "the sum over the samples is missing: multiply by 𝟏 (δ 𝟏)"
            out[i] = (message, mistake)
        return out

    def _sources(self, sides):
        """The values moved along random directions: of those whose differential appears, the ones no other of
        them is computed from."""
        found = list(dict.fromkeys(n.args[0] for _, _, node in sides for n in walk(node) if n.kind == "dsym"))
        return [s for s in found if not any(self.meaning.depends(s, t) for t in found if t != s)]


def _result(meaning, head):
    """The result a chain's first side names (δ⁽ˡ⁾ or ∂L/∂X), or None."""
    if head.kind == "grad" or head.kind == "sym" and head.args[0].startswith("delta"):
        return show(meaning, head)
    return None


def _same_shape(a, b):
    if a is None or b is None:
        return a is None and b is None
    if not isinstance(a, (list, tuple)):
        return str(a) == str(b)
    return all(str(x) == str(y) for x, y in zip(a, b))


def _equal(got, expected):
    """Equal at every point: agreement up to RTOL of the scale, with the rounding floor of that scale."""
    for g, e in zip(got, expected):
        g, e = np.atleast_1d(np.asarray(g, dtype=float)), np.atleast_1d(np.asarray(e, dtype=float))
        if g.shape != e.shape or not agreement(g, e, rtol=RTOL, floor=rounding_floor(np.float64, e) * 64).passed:
            return False
    return True


def _error(got, expected):
    worst = 0.0
    for g, e in zip(got, expected):
        g, e = np.asarray(g, dtype=float), np.asarray(e, dtype=float)
        if not np.all(np.isfinite(g)):
            return "not finite"
        scale = max(float(np.max(np.abs(e), initial=0.0)), 1e-300)
        worst = max(worst, float(np.max(np.abs(g - e), initial=0.0)) / scale)
    return f"relative difference {worst:.2g} at random points"


class Env:
    """The values at one point, and the differentials: each source moved along a random direction, everything
    computed from it moved with it."""

    def __init__(self, meaning, point, sources, rng, moved=None):
        self.meaning, self.point, self.sources = meaning, point, sources
        self.values = meaning.values(point, moved)
        self.directions = {s: rng.normal(size=np.shape(self.values[s])) for s in sources} if rng is not None \
            else None
        self._truths, self._moved = None, {}

    def __getitem__(self, ident):
        return self.values[ident] if ident in self.values else self.truth(ident)   # δ⁽ˡ⁾: ∂L/∂Z⁽ˡ⁾

    def size(self, s):
        return self.meaning.value_of(s)

    def activation(self, key):
        return self.meaning.activation(key)

    def truth(self, ident):
        if self._truths is None:
            self._truths = self.meaning.truths(self.point, self.values)
        return self._truths[ident]

    def moved(self, t):
        if t not in self._moved:
            moved = {s: self.values[s] + t * self.directions[s] for s in self.sources}
            env = Env(self.meaning, self.point, self.sources, None, moved)
            env.directions = self.directions
            self._moved[t] = env
        return self._moved[t]

    def tangent(self, ident):
        if ident in self.sources:
            return self.directions[ident]
        if not self.sources:
            raise ValueError(f"d{ident}: no differential of a variable on this row to move it along")
        return stencil(lambda t: np.asarray(self.moved(t)[ident], dtype=float))

    def differential(self, value):
        return stencil(lambda t: np.asarray(value(self.moved(t)), dtype=float))


class Diagnosis:
    """The classic mistake that explains a wrong side: its fix (in the tree or on its value) gives what was
    expected at every point."""

    def __init__(self, meaning, envs, head):
        self.meaning, self.envs, self.head = meaning, envs, head

    def explain(self, node, expected):
        got = [self._value(node, env) for env in self.envs]
        if not any(np.any(g) for g in got) and any(np.any(e) for e in expected):
            return "it is zero: a term left out"
        for name, candidate in self.candidates(node, got):
            try:
                with np.errstate(all="ignore"):
                    values = [candidate(env, g) for env, g in zip(self.envs, got)]
            except (ValueError, KeyError, IndexError, TypeError, np.linalg.LinAlgError):
                continue
            if _equal(values, expected):
                return name
        return ""

    def _value(self, node, env):
        return evaluate(node, env)

    def candidates(self, node, got):
        m = self.meaning
        show_ = lambda n: show(m, n)  # noqa: E731
        for n in walk(node):
            if n.kind == "call" and n.args[1] and n.args[3].kind == "sym" and n.args[3].args[0][:1] == "A" \
                    and n.args[3].args[0] != "X":
                ident = "Z" + n.args[3].args[0][1:]
                fixed = _replaced(node, n, Node("call", n.pos, (*n.args[:3], Node("sym", n.pos, (ident,),
                                                                                     n.shape)), n.shape))
                yield (f"σ′({m.display(n.args[3].args[0])}) where σ′({m.display(ident)}) is meant: σ′ is taken at the "
                       f"pre-activation Z"), self._of(fixed)
        for k in self._layers():
            z = Node("sym", 0, (f"Z{k}",), m.shape(f"Z{k}"))
            if node.shape is not None and _same_shape(node.shape, z.shape):
                prime = Node("call", 0, ("σ", True, ("layer", k), z), z.shape)
                yield f"σ′({m.display(f'Z{k}')}) is missing (⊙ σ′({m.display(f'Z{k}')}))", \
                    self._of(Node("had", 0, (node, prime), node.shape))
        for n in walk(node):
            if n.kind == "sym" and n.shape is not None and str(n.shape[0]) == str(n.shape[1]) and n.args[0] != "X":
                yield f"{show_(n)} where {show_(n)}ᵀ is meant", self._of(_replaced(node, n, Node("T", n.pos, (n,),
                                                                                             n.shape)))
            if n.kind == "T" and n.args[0].kind == "sym":
                yield f"{show_(n)} where {show_(n.args[0])} is meant (no transpose)", \
                    self._of(_replaced(node, n, n.args[0]))
            if n.kind == "mul" and n.args[0].matrix and n.args[1].matrix:
                a, b = n.args
                yield f"the factors of {show_(n)} in the wrong order", \
                    self._of(_replaced(node, n, Node("mul", n.pos, (b, a), n.shape)))
        for step in (1, -1):
            shifted = self._shifted(node, step)
            if shifted is not None:
                yield ("the layer indices are one off (Ng's numbering maps a⁽ˡ⁾ to z⁽ˡ⁺¹⁾ with W⁽ˡ⁾; here W⁽ˡ⁾ "
                       "maps A⁽ˡ⁻¹⁾ to Z⁽ˡ⁾)" if isinstance(m, NetworkMeaning) else "an index one off"), \
                    self._of(shifted)
        yield from self._by_value(got)

    def _by_value(self, got):
        m = self.meaning
        head = self.head
        truths = lambda env, ident: env.truth(ident)  # noqa: E731
        if isinstance(m, NetworkMeaning):
            samples = lambda env: env["m"]  # noqa: E731
            yield "the 1/m of the mean over the m samples is missing", lambda env, g: g / samples(env)
            yield "an extra 1/m (the loss is summed over the samples, not averaged)", lambda env, g: g * samples(env)
            ident = head.args[0] if head.kind in ("sym", "grad") else None
            if ident and ident.startswith(("delta", "Z")):
                k = m.layer_of(ident)
                yield (f"a partial δ stated as the whole: this is ∂L/∂{m.display(f'A{k}')}, and δ⁽·⁾ = ∂L/∂A ⊙ σ′(Z) "
                       f"(σ′({m.display(f'Z{k}')}) is missing)"), \
                    lambda env, g, k=k: g * env.activation(("layer", k))[1](env[f"Z{k}"]) if np.allclose(
                        g, truths(env, "X" if k == 0 else f"A{k}")) else np.nan * g
                if k == m.L and str(m.spec.activations[-1]) == "softmax":
                    yield ("the softmax's row-sum term is dropped: its Jacobian is diag(s) − s sᵀ, not diag(s ⊙ (1 − "
                           "s)); δ = s ⊙ (g − 𝟏𝟏ᵀ(s ⊙ g)) with g = ∂L/∂A"), \
                        lambda env, g, k=k: self._softmax_fix(env, g, k)
            if ident and ident.startswith("W") and m.spec.weight_decay:
                yield f"the weight-decay term λ{m.display(ident)} is missing", \
                    lambda env, g, i=ident: g + env["lambda"] * env[i]
            for other in m.ids:
                if ident and other != ident and other.startswith(("delta", "W", "b")) and other[0] == ident[0]:
                    name = show(m, Node("grad", 0, (other,))) if head.kind == "grad" else m.display(other)
                    yield f"this is {name}: another layer's", \
                        lambda env, g, o=other, i=ident: env.truth(i) if _equal([g], [env.truth(o)]) else np.nan * g
        yield "the sign is flipped", lambda env, g: -g
        yield "it is the transpose of what was meant", lambda env, g: np.transpose(g)
        yield "a factor 2 too many (the ½ of ½‖·‖² cancels the 2)", lambda env, g: g / 2
        yield "a factor 2 missing", lambda env, g: 2 * g

    def _softmax_fix(self, env, g, k):
        """δ from the elementwise (diagonal) form: where g = s ⊙ u (or s ⊙ (1 − s) ⊙ u) with u = ∂L/∂A, the right δ."""
        s, u = env[f"A{k}"], env.truth(f"A{k}")
        axis = 1 if self.meaning.spec.layout == "AW" else 0
        right = s * (u - np.sum(s * u, axis=axis, keepdims=True))
        for wrong in (s * u, s * (1 - s) * u):
            if _equal([g], [wrong]):
                return right
        return np.nan * g

    def _layers(self):
        m = self.meaning
        if not isinstance(m, NetworkMeaning):
            return []
        k = m.layer_of(self.head.args[0]) if self.head.kind in ("sym", "grad") else None
        return [k] if k else list(range(1, m.L + 1))

    def _of(self, node):
        return lambda env, g: evaluate(node, env)

    def _shifted(self, node, step):
        """node with every layer of the network moved by `step`, or None when some layer does not exist."""
        m = self.meaning
        if not isinstance(m, NetworkMeaning):
            return None
        out = node
        for n in list(walk(node)):
            if n.kind in ("sym", "dsym", "grad") and m.layer_of(n.args[0]) is not None:
                ident = n.args[0]
                k = m.layer_of(ident) + step
                moved = ident.rstrip("0123456789") + str(k)
                if moved not in m.ids:
                    return None
                out = _replaced(out, n, Node(n.kind, n.pos, (moved,), m.shape(moved)))
        return out


def _replaced(node, old, new):
    """A copy of the tree `node` with the node `old` (by identity) replaced by `new`."""
    if node is old:
        return new
    args = tuple(_replaced(a, old, new) if isinstance(a, Node) else a for a in node.args)
    return Node(node.kind, node.pos, args, node.shape)


def _text(row):
    """A row as written, its blanked markup and runs of spaces made one space."""
    return " ".join(row.text.split())
