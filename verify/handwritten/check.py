"""check_derivation: a derivation written by hand, every row checked at random points, its results against the true
ones, the first wrong row named with the classic mistake behind it."""
import html
import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..numeric import agreement, rounding_floor
from . import algebra
from .algebra import Node, Typer, evaluate, show, stencil, walk
from .errors import NoSuchLayer, ShapeMismatch, WrittenError
from ..report import _within
from .meaning import ExpressionMeaning, NetworkMeaning
from .proof import BUDGET, SECONDS, prove
from .syntax import read, rows

RTOL = 1e-6
SHIFT = ("the layer indices are one off: with A⁽⁰⁾ = X, W⁽ˡ⁾ maps A⁽ˡ⁻¹⁾ to Z⁽ˡ⁾ (Ng's numbering, a⁽¹⁾ = x, has W⁽ˡ⁾ "
         "map a⁽ˡ⁾ to z⁽ˡ⁺¹⁾)")


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
    proved: bool = False      # every equality of the row also shown exactly (SymPy, entry by entry at size 2)

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
                "lines_proved": sum(line.proved for line in self.lines),
                "first_error": "" if first is None else f"line {first.line}: {first.mistake or first.message}",
                "results_right": sum(bool(r) for _, r in self.results), "results": len(self.results)}

    def to_json(self):
        return json.dumps({**asdict(self), "passed": self.passed, "summary": self.summary()}, indent=2,
                          sort_keys=True, ensure_ascii=False)

    def __str__(self):
        width = max((len(line.text) for line in self.lines), default=0)
        width = min(width, 80)
        out = [f"check_derivation: {self.source} ({self.subject})", *(f"  note: {n}" for n in self.notes)]
        for line in self.lines:
            mark = {"right": "ok, proved" if line.proved else "ok", "wrong": "WRONG", "shape": "SHAPE"}.get(
                line.verdict, "TRUE, DOES NOT FOLLOW")
            text = line.text if len(line.text) <= width else line.text[:width - 1] + "…"
            out.append(f"  {line.line:>3}  {text:<{width}}  {mark}")
            for part in (line.message, f"mistake: {line.mistake}" if line.mistake else ""):
                if part:
                    out.append(f"{'':>7}{part}")
        s = self.summary()
        proved = f" ({s['lines_proved']} proved exactly)" if s["lines_proved"] else ""
        out.append(f"{s['lines_right']} of {s['lines']} lines right{proved}; {s['results_right']} of {s['results']} "
                   f"results right" + (f"; first error: {s['first_error']}" if s["first_error"] else ""))
        return "\n".join(out)

    def _repr_html_(self):
        cells = "".join(f"<tr><td>{line.line}</td><td><code>{html.escape(line.text)}</code></td>"
                        f"<td>{'ok' if line.right else '<b>' + html.escape(line.verdict) + '</b>'}</td>"
                        f"<td>{html.escape(line.mistake or line.message)}</td></tr>" for line in self.lines)
        return (f"<div class=verify><p>check_derivation: {html.escape(self.source)}</p><table><tr><th>line</th>"
                f"<th>row</th><th>verdict</th><th>why</th></tr>{cells}</table></div>")


def check_derivation(text: str, net: Any = None, *, f: str | None = None, where: dict | None = None,
                     wrt: str | None = None, input_layer: int = 0, names: dict | None = None, trials: int = 3,
                     seed: int = 0, kind: str = "auto", source: str = "derivation", exact: bool = True) -> Checked:
    """Check a derivation written by hand (text, Unicode or LaTeX; one equality or ⇒ per row, a row that starts
    with = continues the one before) on `net` (a chain of dense layers) or on the scalar function `f` of the symbols
    `where` ({name: (rows, cols) or None}). Every row is typed (shapes first), then each equality is compared at
    `trials` random points (differentials along random directions), and each stated result with the true one;
    with `exact`, each equality found right is also proved by SymPy where it decides within a second (the sides
    written out at size 2). A row that cannot be read is a WrittenError naming its line and column."""
    if (net is None) == (f is None):
        raise ValueError("check_derivation: give net= (a network) or f= with where= (an expression), one of them")
    meaning = NetworkMeaning(net, input_layer, names) if net is not None else ExpressionMeaning(f, where or {}, wrt,
                                                                                               names)
    subject = (net.describe() if hasattr(net, "describe") else repr(net)) if net is not None else f"f = {f}"
    report = Checked(source, subject)
    chains = _chains(rows(text, kind), meaning)
    if not chains:
        report.notes.append("no math rows found (display math in .tex/.md, or one equality per line in text)")
    rng = np.random.default_rng(seed)
    points = [meaning.draw(rng) for _ in range(trials)]
    budget = Budget(BUDGET if exact else 0.0)
    for chain in chains:
        report.lines.extend(Chain(meaning, chain, points, rng, budget).check())
    if budget.spent:
        report.notes.append(f"exact proofs stopped after {BUDGET:g} s; the lines after are checked at random points")
    return report


class Budget:
    """The seconds a derivation's exact proofs may take in all; spent when they are gone."""

    def __init__(self, seconds):
        self.left, self.spent = seconds, False

    def prove(self, *args):
        """prove(*args) within min(SECONDS, what is left); None when there is no time for it."""
        if self.left <= 0:
            return None
        started = time.monotonic()
        out = _within(min(SECONDS, self.left), prove, *args)
        self.left -= time.monotonic() - started
        if self.left <= 0:
            self.spent = True
        return out


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

    def __init__(self, meaning, chain, points, rng, budget):
        self.meaning, self.chain, self.points, self.rng, self.budget = meaning, chain, points, rng, budget

    def layers(self):
        """[(l, {row: [(relation, node)]}, {row: ShapeMismatch})] at every l at which every symbol exists (just l =
        None without a generic l); the sides of a row are unified with each other."""
        generic = any(_uses_l(tree) for _, sides in self.chain for _, tree in sides)
        out = []
        for l in self.meaning.generic_layers() if generic else [None]:
            typed, broken = {}, {}
            try:
                for k, (row, sides) in enumerate(self.chain):
                    typer = Typer(self.meaning, row, l)
                    try:
                        nodes = [(relation, typer.type(tree)) for relation, tree in sides]
                        typed[k] = [(relation, typer.finish(node)) for relation, node in nodes]
                    except ShapeMismatch as e:
                        broken[k] = e
            except NoSuchLayer:
                continue
            out.append((l, typed, broken))
        if not out:
            row = self.chain[0][0]
            raise WrittenError(row, row.column, "no value of the generic layer l fits this network's layers")
        return out

    def line(self, k, verdict, message="", mistake=""):
        return Line(self.chain[k][0].line, _text(self.chain[k][0]), verdict, message, mistake)

    def check(self):
        verdicts, result, right, proved = {}, None, True, {}
        for l, typed, broken in self.layers():
            at = f" (at l = {l})" if l is not None else ""
            for k, e in broken.items():
                verdicts.setdefault(k, self.line(k, "shape", e.reason + at, _shape_mistake(e.reason)))
            sides = [(k, relation, node) for k in sorted(typed) for relation, node in typed[k]]
            if not sides:
                right = False
                continue
            envs = [Env(self.meaning, point, self._sources(sides), self.rng) for point in self.points]
            with np.errstate(all="ignore"):   # a NaN or ∞ a row gives is found by the comparison
                values = [[evaluate(node, env) for env in envs] for _, _, node in sides]
            head = sides[0][2]
            result = result or (_result(self.meaning, head) if sides[0][0] == 0 else None)
            for i in range(1, len(sides)):
                k, node = sides[i][0], sides[i][2]
                if k in verdicts and not verdicts[k].right:
                    continue
                gap = any(sides[i - 1][0] < b < k for b in broken)   # the step before it did not type
                before = 0 if gap else i - 1
                verdict = self.relation(sides, values, envs, i, before, at)
                if verdict is None:
                    verdicts.setdefault(k, self.line(k, "right"))
                    if proved.get(k, True):
                        proved[k] = bool(self.budget.prove(sides[before][2], node, self.meaning, envs[0].sources))
                else:
                    verdicts[k] = self.line(k, *verdict)
            last = len(self.chain) - 1
            right = right and last in typed and _same_shape(sides[-1][2].shape, head.shape) and _equal(
                values[-1], values[0])
        lines = []
        for k, (row, nodes) in enumerate(self.chain):
            line = verdicts.get(k) or self.line(k, "right", "" if len(nodes) > 1 or k else
                                                "a single expression: nothing to compare")
            if line.right and proved.get(k):
                line = replace(line, proved=True)
            if result is not None:
                line = replace(line, result=result, result_right=bool(right) if k == len(self.chain) - 1 else None)
            lines.append(line)
        return lines

    def relation(self, sides, values, envs, i, before, at):
        """None when side i equals side `before` (the one before it, or the chain's first when that one did not
        type); else (verdict, what is wrong, the mistake)."""
        node, other = sides[i][2], sides[before][2]
        if not _same_shape(node.shape, other.shape):
            message = f"{show(self.meaning, node)} is {algebra.shape_text(node.shape)}, but " \
                      f"{show(self.meaning, other)} is {algebra.shape_text(other.shape)}{at}"
            diagnosis = Diagnosis(self.meaning, envs, sides[0][2])
            for shifted in (diagnosis.shifted(node, step) for step in (1, -1)):
                try:
                    if shifted is not None and _equal([evaluate(shifted, env) for env in envs], values[before]):
                        return "shape", message, SHIFT
                except ValueError:   # the shifted product does not conform either
                    continue
            return "shape", message, self._shape_hint(other.shape, node.shape)
        if _equal(values[i], values[before]):
            return None if before == i - 1 else ("true, but does not follow",
                                                 "it equals the chain's first side, not the step before it")
        if before == i - 1 and i > 1 and _same_shape(node.shape, sides[0][2].shape) and _equal(values[i], values[0]):
            return ("true, but does not follow", f"{show(self.meaning, node)} equals {show(self.meaning, sides[0][2])}"
                                                 f"{at}, but not the step before it")
        mistake = Diagnosis(self.meaning, envs, sides[0][2]).explain(node, values[before])
        return ("wrong", f"{show(self.meaning, node)} ≠ {show(self.meaning, other)}{at}: "
                         f"{_error(values[i], values[before])}", mistake)

    def _shape_hint(self, expected, got):
        """The classic mistake a shape difference shows: a transpose, or a sum over the samples left out."""
        if expected is None or got is None:
            return ""
        if _same_shape(expected, got[::-1]):
            return "a transpose, or the factors in the wrong order: the sides have each other's shape ((A B)ᵀ = Bᵀ Aᵀ)"
        samples = getattr(self.meaning, "samples", None)
        if str(expected[1]) == "1" and _same_shape(expected[0], got[0]) and str(got[1]) == str(samples):
            return "the sum over the samples is missing: multiply by 𝟏 (δ 𝟏)"
        return ""

    def _sources(self, sides):
        """The values moved along random directions: of those whose differential appears, the ones no other of
        them is computed from."""
        found = list(dict.fromkeys(n.args[0] for _, _, node in sides for n in walk(node) if n.kind == "dsym"))
        return [s for s in found if not any(self.meaning.depends(s, t) for t in found if t != s)]


def _shape_mistake(reason):
    """The classic mistake a product that does not conform shows."""
    if "transpose missing" in reason:
        return "a transpose missing"
    if "other order" in reason:
        return "the factors of a product in the wrong order"
    return ""


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
        with np.errstate(all="ignore"):
            return self._explain(node, expected)

    def _explain(self, node, expected):
        got = [self._value(node, env) for env in self.envs]
        if not any(np.any(g) for g in got) and any(np.any(e) for e in expected):
            return "it is zero: a term left out"
        for name, candidate in self.candidates(node, got):
            try:
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
            prime = Node("call", 0, ("σ", True, ("layer", k), z), z.shape)
            for n in walk(node):   # ⊙ σ′(Z) left out of a factor of Z's shape
                if n.shape is not None and _same_shape(n.shape, z.shape):
                    yield f"σ′({m.display(f'Z{k}')}) is missing (⊙ σ′({m.display(f'Z{k}')}))", \
                        self._of(_replaced(node, n, Node("had", 0, (n, prime), n.shape)))
            if node.shape is not None and _same_shape(node.shape, z.shape) and str(m.spec.loss) in ("bce",
                                                                                                 "softmax_ce"):
                yield (f"an extra σ′({m.display(f'Z{k}')}): with the cross-entropy of a sigmoid or softmax output, "
                       f"σ′ cancels against ∂L/∂A (δ = A − Y)"), self._of(Node("hdiv", 0, (node, prime), node.shape))
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
            shifted = self.shifted(node, step)
            if shifted is not None:
                yield SHIFT if isinstance(m, NetworkMeaning) else "an index one off", self._of(shifted)
        if isinstance(m, NetworkMeaning):
            yield from self._one_index(node)
            yield from self._partial_deltas(node)
        yield from self._by_value(got)

    def _one_index(self, node):
        """One symbol's layer one off: A⁽²⁾ where A⁽¹⁾ is meant."""
        m = self.meaning
        for n in walk(node):
            if n.kind == "sym":
                for step in (1, -1):
                    moved = self.shifted(n, step)
                    if moved is not None and _same_shape(moved.shape, n.shape):
                        yield (f"{show(m, n)} where {show(m, moved)} is meant: a layer index one off"), \
                            self._of(_replaced(node, n, moved))

    def _partial_deltas(self, node):
        """A partial δ stated as the whole: a factor that is ∂L/∂A⁽ᵏ⁾ where δ⁽ᵏ⁾ = ∂L/∂A⁽ᵏ⁾ ⊙ σ′(Z⁽ᵏ⁾) is meant."""
        m = self.meaning
        for k in range(1, m.L):
            z = Node("sym", 0, (f"Z{k}",), m.shape(f"Z{k}"))
            prime = Node("call", 0, ("σ", True, ("layer", k), z), z.shape)
            for n in walk(node):
                if n.kind != "sym" and n.shape is not None and _same_shape(n.shape, z.shape):
                    def fixed(env, g, n=n, k=k, prime=prime):
                        if not _equal([evaluate(n, env)], [env.truth(f"A{k}")]):
                            raise ValueError("not ∂L/∂A")
                        return evaluate(_replaced(node, n, Node("had", 0, (n, prime), n.shape)), env)
                    yield (f"a partial δ stated as the whole: {show(m, n)} is ∂L/∂{m.display(f'A{k}')}, and "
                           f"{m.display(f'delta{k}')} = ∂L/∂{m.display(f'A{k}')} ⊙ σ′({m.display(f'Z{k}')})"), fixed

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

    def shifted(self, node, step):
        """node with every layer of the network moved by `step`, or None when some layer does not exist."""
        m = self.meaning
        if not isinstance(m, NetworkMeaning):
            return None
        out = node
        for n in list(walk(node)):
            if n.kind not in ("sym", "dsym", "grad"):
                continue
            ident = "A0" if n.args[0] == "X" else n.args[0]   # X = A⁽⁰⁾
            if m.layer_of(ident) is not None and ident not in m.sizes:
                k = m.layer_of(ident) + step
                moved = ident.rstrip("0123456789") + str(k)
                moved = "X" if moved == "A0" else moved
                if moved not in m.ids:
                    return None
                out = _replaced(out, n, Node(n.kind, n.pos, (moved,), m.shape(moved)))
        return out


def _replaced(node, old, new):
    """A copy of the tree `node` with the node `old` (by identity) replaced by `new`."""
    if node is old:
        return new
    args = tuple(_replaced(a, old, new) if isinstance(a, Node) else a for a in node.args)
    return node if all(a is b for a, b in zip(args, node.args)) else Node(node.kind, node.pos, args, node.shape)


def _text(row):
    """A row as written, its blanked markup and runs of spaces made one space."""
    return " ".join(row.text.split())
