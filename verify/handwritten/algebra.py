"""A read row given its meaning: every node typed with its shape (the lengths of 𝟏 found by unification; a product
that does not conform names both shapes and the transpose it lacks), then evaluated in NumPy at a point."""
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .errors import NoSuchLayer, ShapeMismatch, WrittenError

H = 1e-3   # step of the five-point central difference of a differential: truncation O(H⁴)


class Var:
    """An unknown length (of a 𝟏 written without one), bound by unification."""

    def __repr__(self):
        return "?"


@dataclass
class Node:
    kind: str          # sym, num, ones, full, mul, had, hdiv, div, add, sub, neg, T, pow, inv, call, norm, step, dsym,
    pos: int           # dexpr, grad
    args: tuple
    shape: list | None = field(default=None)   # [rows, cols]; None: a scalar

    @property
    def matrix(self):
        return self.shape is not None


def size_text(s):
    return "?" if isinstance(s, Var) else str(s)


def shape_text(shape):
    return "scalar" if shape is None else "×".join(size_text(s) for s in shape)


class Typer:
    """Types the trees of one row at one value of the generic layer l: names through `meaning`, shapes unified."""

    def __init__(self, meaning, row, l=None):
        self.meaning, self.row, self.l = meaning, row, l
        self.bound = {}
        self.ones = []

    def error(self, pos, message, kind=WrittenError):
        return kind(self.row, pos, message)

    def mismatch(self, pos, message):
        return self.error(pos, message, ShapeMismatch)

    def find(self, s):
        while isinstance(s, Var) and s in self.bound:
            s = self.bound[s]
        return s

    def unify(self, a, b):
        a, b = self.find(a), self.find(b)
        if isinstance(a, Var):
            if a is not b:
                self.bound[a] = b
            return True
        if isinstance(b, Var):
            self.bound[b] = a
            return True
        return sp.sympify(a) == sp.sympify(b)

    def shape(self, node):
        return None if node.shape is None else [self.find(s) for s in node.shape]

    def finish(self, node):
        """node with every shape resolved; a 𝟏 whose length nothing fixes is an error naming its column."""
        for one in self.ones:
            one.shape = self.shape(one)
            known = [s for s in one.shape if not isinstance(s, Var)]
            if len(known) == 1 and one.args == ("free",):   # a product fixed its length: a vector
                for s in one.shape:
                    if isinstance(s, Var):
                        self.unify(s, 1)
                one.shape = self.shape(one)
            if any(isinstance(s, Var) for s in one.shape):
                raise self.error(one.pos, "cannot tell the size of this 𝟏 or I from what it multiplies or is added "
                                          "to: write its length, as 𝟏_m")
        self._resolve(node)
        return node

    def _resolve(self, node):
        if node.shape is not None:
            node.shape = self.shape(node)
        for a in node.args:
            if isinstance(a, Node):
                self._resolve(a)

    def ones_node(self, pos, rows, cols, free=False):
        """𝟏 of shape rows × cols; `free`: written without a length (a vector or a matrix, as the context says)."""
        node = Node("ones", pos, ("free",) if free else (), [rows, cols])
        self.ones.append(node)
        return node

    def type(self, tree):
        kind, pos = tree[0], tree[1]
        method = getattr(self, "t_" + kind)
        return method(pos, *tree[2:])

    def t_num(self, pos, text):
        return Node("num", pos, (float(sp.Rational(text)),))

    def t_ones(self, pos, length, explicit):
        """𝟏_n: the ones vector of length n; 𝟏 alone: the ones of the shape around it (a vector when a product
        fixes only its length, a matrix in a sum)."""
        if length is None:
            return self.ones_node(pos, Var(), Var(), free=True)
        return self.ones_node(pos, self.meaning.size(length, lambda m: self.error(pos, m)), 1)

    def t_name(self, pos, base, layer):
        ident = self.meaning.resolve(base, layer, self.l, lambda m: self.error(pos, "", m) if m is NoSuchLayer
                                     else self.error(pos, m))
        return Node("sym", pos, (ident,), self.meaning.shape(ident))

    def t_eye(self, pos):
        size = Var()
        node = Node("eye", pos, (), [size, size])
        self.ones.append(node)
        return node

    def t_bars(self, pos, inner):
        a = self.type(inner)
        if not a.matrix:
            return Node("call", pos, ("abs", False, "abs", a))
        self._square(pos, a, "the determinant |X|")
        return Node("call", pos, ("det", False, None, a))

    def t_partial(self, pos, inner):
        raise self.error(pos, "∂ alone: write a derivative of the loss, ∂L/∂W")

    def t_grad(self, pos, top, bottom):
        of = self.type(top[2])
        wrt = self.type(bottom[2])
        if of.kind != "sym" or of.args[0] != self.meaning.function:
            raise self.error(pos, f"a derivative of {self.meaning.function_text} is read (∂{self.meaning.function_text}"
                                  f"/∂X); a derivative of a matrix by a matrix has four indices")
        if wrt.kind != "sym" or wrt.args[0] not in self.meaning.differentiable:
            raise self.error(bottom[1], f"∂{self.meaning.function_text}/∂ of what? the loss is differentiated by "
                                        f"{', '.join(self.meaning.differentiable_text)}")
        return Node("grad", pos, (wrt.args[0],), list(wrt.shape) if wrt.shape else None)

    def t_d(self, pos, inner):
        node = self.type(inner)
        if node.kind == "sym":
            if node.args[0] not in self.meaning.varies:
                raise self.error(pos, f"d{self.meaning.display(node.args[0])}: only values of the forward pass, "
                                      f"the inputs and the parameters have differentials here")
            return Node("dsym", pos, (node.args[0],), node.shape)
        return Node("dexpr", pos, (node,), node.shape)

    def _plain_one(self, tree):
        return tree[0] == "num" and tree[2] == "1"

    def t_T(self, pos, inner):
        if self._plain_one(inner):
            return self.ones_node(inner[1], 1, Var())
        node = self.type(inner)
        if node.shape is None:
            return node
        if node.kind == "ones":
            rows, cols = node.shape
            node.shape = [cols, rows]
            return node
        return Node("T", pos, (node,), [node.shape[1], node.shape[0]])

    def t_mul(self, pos, left, right):
        a = self.type(left)
        if a.matrix and self._plain_one(right):   # M 1: a vector of ones
            b = self.ones_node(right[1], Var(), 1)
        else:
            b = self.type(right)
        if self._plain_one(left) and b.kind == "ones" and b.shape[0] == 1:   # 1 1ᵀ
            a = self.ones_node(left[1], Var(), 1)
        if not (a.matrix and b.matrix):
            return Node("mul", pos, (a, b), a.shape or b.shape)
        if not self.unify(a.shape[1], b.shape[0]):
            raise self.mismatch(pos, self.nonconforming(a, b))
        return Node("mul", pos, (a, b), [a.shape[0], b.shape[1]])

    def nonconforming(self, a, b):
        (r1, c1), (r2, c2) = self.shape(a), self.shape(b)
        left, right = show(self.meaning, a), show(self.meaning, b)
        message = f"the product {left} · {right} does not conform: shapes {shape_text([r1, c1])} and " \
                  f"{shape_text([r2, c2])}"
        def same(x, y):
            return not isinstance(x, Var) and not isinstance(y, Var) and sp.sympify(x) == sp.sympify(y)
        if same(r1, r2):
            return message + f"; a transpose missing on the left ({show(self.meaning, a, transpose=True)})?"
        if same(c1, c2):
            return message + f"; a transpose missing on the right ({show(self.meaning, b, transpose=True)})?"
        if same(c2, r1):
            return message + "; the factors in the other order?"
        return message

    def t_div(self, pos, top, bottom):
        a, b = self.type(top), self.type(bottom)
        if b.matrix:
            raise self.mismatch(pos, f"division by the matrix {show(self.meaning, b)} ({shape_text(b.shape)}): write ⊘ "
                                  f"for entrywise division, or its inverse")
        return Node("div", pos, (a, b), a.shape)

    def _same(self, pos, a, b, what):
        if a.matrix and b.matrix:
            if not (self.unify(a.shape[0], b.shape[0]) and self.unify(a.shape[1], b.shape[1])):
                sa, sb = self.shape(a), self.shape(b)
                hint = "; one of them transposed?" if sa[::-1] == sb else ""
                raise self.mismatch(pos, f"{what} of shapes {shape_text(sa)} and {shape_text(sb)}: "
                                         f"{show(self.meaning, a)} and {show(self.meaning, b)}{hint}")
        return a, b

    def _spread(self, a, b):
        """A scalar beside a matrix in a sum is that scalar times the matrix of ones (1 − A is 𝟏 − A)."""
        if a.matrix and not b.matrix:
            return a, Node("full", b.pos, (b,), list(a.shape))
        if b.matrix and not a.matrix:
            return Node("full", a.pos, (a,), list(b.shape)), b
        return a, b

    def t_add(self, pos, left, right, kind="add"):
        a, b = self._spread(self.type(left), self.type(right))
        a, b = self._same(pos, a, b, "a sum")
        return Node(kind, pos, (a, b), a.shape)

    def t_sub(self, pos, left, right):
        return self.t_add(pos, left, right, "sub")

    def t_had(self, pos, left, right, kind="had"):
        a, b = self.type(left), self.type(right)
        if not (a.matrix and b.matrix):
            return Node("mul" if kind == "had" else "div", pos, (a, b), a.shape or b.shape)
        a, b = self._same(pos, a, b, "an entrywise product" if kind == "had" else "an entrywise division")
        return Node(kind, pos, (a, b), a.shape)

    def t_hdiv(self, pos, left, right):
        return self.t_had(pos, left, right, "hdiv")

    def t_neg(self, pos, inner):
        a = self.type(inner)
        return Node("neg", pos, (a,), a.shape)

    def _square(self, pos, a, what):
        if a.matrix and not self.unify(a.shape[0], a.shape[1]):
            raise self.mismatch(pos, f"{what} needs a square matrix; {show(self.meaning, a)} is "
                                     f"{shape_text(self.shape(a))}")

    def t_pow(self, pos, inner, k):
        a = self.type(inner)
        self._square(pos, a, "a matrix power")
        return Node("pow", pos, (a, k), a.shape)

    def t_hpow(self, pos, inner, k):
        a = self.type(inner)
        return Node("hpow", pos, (a, k), a.shape)

    def t_inv(self, pos, inner):
        a = self.type(inner)
        self._square(pos, a, "the inverse")
        return Node("inv", pos, (a,), a.shape)

    def t_norm(self, pos, inner):
        return Node("norm", pos, (self.type(inner),))

    def t_step(self, pos, inner):
        a = self.type(inner)
        return Node("step", pos, (a,), a.shape)

    def t_call(self, pos, name, prime, arg):
        a = self.type(arg)
        if name in ("tr", "det", "sum"):
            if prime:
                raise self.error(pos, f"{name}′ is not read")
            if name != "sum":
                self._square(pos, a, name)
            return Node("call", pos, (name, False, None, a))
        if name == "inv":
            return self.t_inv(pos, arg)
        if name == "diag":
            if not a.matrix or not (self.unify(a.shape[1], 1) or self.unify(a.shape[0], 1)):
                raise self.mismatch(pos, f"diag of a vector; {show(self.meaning, a)} is {shape_text(self.shape(a))}")
            n = self.shape(a)[0] if self.find(a.shape[1]) == 1 else self.shape(a)[1]
            return Node("call", pos, ("diag", False, None, a), [n, n])
        if name == "σ":
            act = self.meaning.activation_of(a, prime, lambda m: self.error(pos, m))
        else:
            act = self.meaning.named_activation(name)
        return Node("call", pos, (name, prime, act, a), a.shape)


def evaluate(node, env):
    """The value of a typed node at a point: `env[id]` the values, env.dims the sizes, env.tangent(id) and
    env.moved(t) the differentials (a five-point central difference of the moved point for a d(expression))."""
    kind, args = node.kind, node.args
    if kind == "sym":
        return env[args[0]]
    if kind == "num":
        return args[0]
    if kind == "ones":
        return np.ones([env.size(s) for s in node.shape])
    if kind == "eye":
        return np.eye(env.size(node.shape[0]))
    if kind == "full":
        return evaluate(args[0], env) * np.ones([env.size(s) for s in node.shape])
    if kind == "grad":
        return env.truth(args[0])
    if kind == "dsym":
        return env.tangent(args[0])
    if kind == "dexpr":
        return env.differential(lambda moved: evaluate(args[0], moved))
    if kind == "call":
        name, prime, act, a = args
        x = evaluate(a, env)
        if name == "tr":
            return float(np.trace(x)) if np.ndim(x) else x
        if name == "det":
            return float(np.linalg.det(x))
        if name == "sum":
            return float(np.sum(x))
        if name == "diag":
            return np.diag(np.ravel(x))
        f, df = env.activation(act)
        return (df if prime else f)(x)
    values = [evaluate(a, env) if isinstance(a, Node) else a for a in args]
    if kind == "mul":
        a, b = values
        return a @ b if node.args[0].matrix and node.args[1].matrix else a * b
    if kind == "had":
        return values[0] * values[1]
    if kind in ("hdiv", "div"):
        return values[0] / values[1]
    if kind == "add":
        return values[0] + values[1]
    if kind == "sub":
        return values[0] - values[1]
    if kind == "neg":
        return -values[0]
    if kind == "T":
        return values[0].T
    if kind == "pow":
        a, k = values
        return np.linalg.matrix_power(a, k) if node.matrix else a ** k
    if kind == "hpow":
        return values[0] ** values[1]
    if kind == "inv":
        return np.linalg.inv(values[0]) if node.matrix else 1 / values[0]
    if kind == "norm":
        return float(np.sqrt(np.sum(np.square(values[0]))))
    if kind == "step":
        return (values[0] > 0).astype(float)
    raise AssertionError(kind)


def walk(node):
    """Every node of a typed tree, parents first."""
    yield node
    for a in node.args:
        if isinstance(a, Node):
            yield from walk(a)


def stencil(f, h=H):
    """d/dt f(t) at 0 by the five-point central difference (−f(2h) + 8f(h) − 8f(−h) + f(−2h)) / 12h."""
    return (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)


SHOWN = {"mul": " ", "had": " ⊙ ", "hdiv": " ⊘ ", "div": "/", "add": " + ", "sub": " − "}


def show(meaning, node, transpose=False):
    """A typed node as text, for messages (transposed: with ᵀ added, or taken off)."""
    if transpose:
        return show(meaning, node.args[0]) if node.kind == "T" else _wrapped(meaning, node) + "ᵀ"
    kind, args = node.kind, node.args
    if kind == "sym":
        return meaning.display(args[0])
    if kind == "num":
        return f"{args[0]:g}"
    if kind == "ones":
        return "𝟏" if node.shape[1] == 1 else "𝟏ᵀ"
    if kind == "eye":
        return "I"
    if kind == "full":
        return show(meaning, args[0])
    if kind == "grad":
        return f"∂{meaning.function_text}/∂{meaning.display(args[0])}"
    if kind == "dsym":
        return f"d{meaning.display(args[0])}"
    if kind == "dexpr":
        return f"d({show(meaning, args[0])})"
    if kind == "call":
        name, prime, act, a = args
        return f"{name}{'′' if prime else ''}({show(meaning, a)})"
    if kind in SHOWN:
        return _wrapped(meaning, args[0]) + SHOWN[kind] + _wrapped(meaning, args[1])
    if kind == "neg":
        return "−" + _wrapped(meaning, args[0])
    if kind == "T":
        return _wrapped(meaning, args[0]) + "ᵀ"
    if kind == "pow":
        return f"{_wrapped(meaning, args[0])}^{args[1]}"
    if kind == "hpow":
        return f"{_wrapped(meaning, args[0])}^∘{args[1]}"
    if kind == "inv":
        return f"{_wrapped(meaning, args[0])}⁻¹"
    if kind == "norm":
        return f"‖{show(meaning, args[0])}‖"
    return f"[{show(meaning, args[0])} > 0]"


def _wrapped(meaning, node):
    text = show(meaning, node)
    return f"({text})" if node.kind in SHOWN or node.kind == "neg" else text
