"""Activation functions as SymPy classes (σ, relu, leaky relu, softplus, softmax), and canonical elementwise application."""
from functools import lru_cache

import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.matexpr import MatrixExpr

from ..errors import InvalidArgument, InvalidType

# The bound variable of every elementwise Lambda, fixed so that equal applications are equal nodes.
ELT = sp.Dummy("x", dummy_index=0)


class ScalarFunctionBase(sp.Function):
    """A scalar function of the toolkit (σ, relu, a registered activation): refuses strings (SymPy's Function would
    sympify, that is run, them); `latex_name` and `text_name` are how documents write its name. (SymPy's printers
    dispatch a Function subclass to the methods of base classes whose names end in "Base": _print_ScalarFunctionBase.)"""

    latex_name: str | None = None  # None: \operatorname{<class name>}
    text_name: str | None = None   # None: the class name

    def __new__(cls, *args, **kwargs):
        if any(isinstance(a, str) for a in args):
            raise InvalidType(f"{cls.__name__}: arguments must be SymPy expressions or numbers, not strings")
        return super().__new__(cls, *args, **kwargs)


class DefinedBase(ScalarFunctionBase):
    """A function given by its definition f(x) (a registered activation): f' is SymPy's derivative of the
    definition, and code computes the definition."""

    nargs = 1

    @staticmethod
    def definition(x):
        raise NotImplementedError

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return cls.definition(x)

    def fdiff(self, argindex=1):
        x = sp.Dummy(real=True)
        return sp.diff(self.definition(x), x).xreplace({x: self.args[0]})

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return _own_rewritten(self.definition(x), sp.exp)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return _own_rewritten(self.definition(x), sp.Max)


def _own_rewritten(e, target):
    """e with the toolkit's own functions (σ, relu, a registered one) rewritten in SymPy's terms, SymPy's left as
    they are (x³ stays x³, sin stays sin)."""
    return e.replace(lambda f: isinstance(f, ScalarFunctionBase), lambda f: f.rewrite(target))


def defined(name, definition, latex=None):
    """A new function class `name` with f(x) = definition(x), written `latex` in documents."""
    return type(name, (DefinedBase,), {"definition": staticmethod(definition), "latex_name": latex,
                                   "__module__": __name__, "__doc__": f"{name}(x), defined by the user."})


class sigmoid(ScalarFunctionBase):
    """The logistic function σ(x) = 1/(1 + e^{-x}), with σ' = σ(1 − σ)."""

    nargs = 1
    latex_name, text_name = r"\sigma", "σ"

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class relu(ScalarFunctionBase):
    """The rectifier max(0, x), with relu' = H(x) (taken as 0 at the kink)."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Max(0, x)

    def fdiff(self, argindex=1):
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(0, x)


class leaky_relu(ScalarFunctionBase):
    """The leaky rectifier: x for x > 0, αx below (max(αx, x) for α ≤ 1), with leaky_relu' = α + (1 − α) H(x)."""

    nargs = 2
    latex_name = r"\operatorname{lrelu}"

    @classmethod
    def eval(cls, x, alpha):
        if x.is_Number and alpha.is_Number:
            return x if x > 0 else alpha * x

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        x, alpha = self.args
        return alpha + (1 - alpha) * sp.Heaviside(x, 0)

    def _eval_rewrite_as_Max(self, x, alpha, **kwargs):
        # max(αx, x) for α ≤ 1, min(αx, x) for α ≥ 1: both are x above 0 and αx below
        if alpha.is_number and alpha > 1:
            return sp.Min(alpha * x, x)
        return sp.Max(alpha * x, x)


class softplus(ScalarFunctionBase):
    """softplus(x) = log(1 + e^x), with softplus' = σ."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class log_softplus(ScalarFunctionBase):
    """log softplus(x), for the loss −y log a of a softplus output computed from the logits (code only)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return softplus_ratio(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(sp.log(1 + sp.exp(x)))


class softplus_ratio(ScalarFunctionBase):
    """σ(x) / softplus(x), the derivative of log softplus(x): 1 as x → −∞, where both underflow (code only)."""

    nargs = 1

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / ((1 + sp.exp(-x)) * sp.log(1 + sp.exp(x)))


class FirstMax(MatrixExpr):
    """[T_j is the first largest of T_0 … T_{w−1}], entrywise: 1 where T_j exceeds every tap before it and is at least
    every tap after it, else 0 (a max pool's argmax mask, ties to the first). Piecewise constant: its differential is
    0 wherever it is defined."""

    def __new__(cls, j, *taps):
        if len({T.shape for T in taps}) != 1 or not 0 <= j < len(taps):
            raise InvalidArgument(f"FirstMax: tap {j} of {len(taps)} taps of one shape, got {[T.shape for T in taps]}")
        return sp.Basic.__new__(cls, sp.Integer(j), *taps)

    @property
    def j(self):
        return int(self.args[0])

    @property
    def taps(self):
        return self.args[1:]

    @property
    def shape(self):
        return self.args[1].shape

    def _entry(self, i, k, **kwargs):
        T = [t[i, k] for t in self.taps]
        return sp.Piecewise((1, sp.And(*(T[self.j] > T[n] for n in range(self.j)),
                                       *(T[self.j] >= T[n] for n in range(self.j + 1, len(T))))), (0, True))


class _AlongAxis(MatrixExpr):
    """A function of a matrix applied per column (axis 0) or per row (axis 1); `causal`: over the entries up to the
    diagonal only (column j over rows i ≤ j, row i over columns j ≤ i), the others 0: a causal attention mask."""

    def __new__(cls, arg, axis=0, causal=False):
        if not getattr(arg, "is_Matrix", False):
            raise InvalidType(f"{cls.__name__} needs a matrix, got {arg!r}")
        if axis not in (0, 1):
            raise InvalidArgument(f"softmax axis must be 0 (columns) or 1 (rows), got {axis}")
        if causal and arg.rows != arg.cols:
            raise InvalidArgument(f"a causal {cls.__name__} needs a square matrix, got shape {arg.shape}")
        return sp.Basic.__new__(cls, arg, sp.Integer(axis), *([sp.true] if causal else []))

    @property
    def causal(self):
        return len(self.args) > 2

    @property
    def arg(self):
        return self.args[0]

    @property
    def axis(self):
        return int(self.args[1])

    @property
    def shape(self):
        return self.arg.shape

    def _eval_transpose(self):
        return None


class Softmax(_AlongAxis):
    """softmax(Z) along an axis: exp(Z) normalised so that each column (axis 0) or each row (axis 1) sums to 1."""

    def _entry(self, i, j, **kwargs):
        # softmax(Z)_ij = e^{Z_ij} / Σ_k e^{Z_kj} (axis 0) or e^{Z_ij} / Σ_k e^{Z_ik} (axis 1); causal: k ≤ j (axis 0),
        # k ≤ i (axis 1), and 0 past the diagonal
        k = sp.Dummy("k")
        if self.axis == 0:
            last = j if self.causal else self.rows - 1
            total = sp.Sum(sp.exp(self.arg[k, j]), (k, 0, last))
        else:
            last = i if self.causal else self.cols - 1
            total = sp.Sum(sp.exp(self.arg[i, k]), (k, 0, last))
        value = sp.exp(self.arg[i, j]) / total
        if self.causal:
            past = (i > j) if self.axis == 0 else (j > i)
            return sp.Piecewise((0, past), (value, True))
        return value


class LogSoftmax(_AlongAxis):
    """log softmax(Z) along an axis, for computing cross-entropy from the logits (code only: no rule)."""

    def _entry(self, i, j, **kwargs):
        return sp.log(Softmax(self.arg, self.axis, self.causal)._entry(i, j))


_w = sp.Wild("w")
# Forms that users write by hand, recognised anywhere in a body as the classes above.
_KNOWN = (
    (1 / (1 + sp.exp(-_w)), sigmoid(_w)),
    (sp.exp(_w) / (1 + sp.exp(_w)), sigmoid(_w)),
    (sp.log(1 + sp.exp(_w)), softplus(_w)),
    (sp.Max(0, _w), relu(_w)),
)


@lru_cache(maxsize=None)
def canonical_body(body):
    """The body of an elementwise function in ELT, with hand-written activations replaced by their class."""
    body, restore = _held(body)
    for pattern, cls in _KNOWN:
        body = body.replace(pattern, cls)
    return body.xreplace(restore)


def _held(body):
    """(body with its matrix quantities (tr A in x·tr A) as real symbols, the map back): SymPy's scalar algebra
    (pattern matching, diff and its assumptions) would subtract numbers from the matrices inside them."""
    held = {m: sp.Dummy(real=True) for m in _matrix_parts(body)}
    return body.xreplace(held), {s: m for m, s in held.items()}


def _matrix_parts(body):
    """The largest sub-expressions of body that hold a matrix and not ELT (tr A in x·tr A)."""
    if body.has(MatrixExpr) and not body.has(ELT):
        return {body}
    return set().union(*[_matrix_parts(a) for a in body.args]) if body.has(MatrixExpr) else set()


# remembered: every layer asks again for its activation's (SymPy compares function classes by identity, so two
# functions of one name are two keys); bounded, as the scalar rule asks with dummies of its own each time
@lru_cache(maxsize=4096)
def derivative(body, x):
    """d body/dx for a real x (|x|' = sign x), with the derivative of a step (H' = δ, sign' = 2δ) taken as 0 almost
    everywhere, as relu' = H."""
    body, restore = _held(body)
    real = sp.Dummy(real=True)
    out = sp.diff(body.xreplace({x: real}), real).xreplace({real: x})
    out = out.replace(sp.DiracDelta, lambda *args: sp.S.Zero) if out.has(sp.DiracDelta) else out
    return out.xreplace(restore)


def body_of(fn):
    """The scalar expression fn(ELT) of a SymPy function class or one-argument Lambda."""
    if isinstance(fn, sp.Lambda):
        (var,) = fn.variables
        return fn.expr.xreplace({var: ELT})
    return fn(ELT)


def elementwise(body, A):
    """σ(A) for σ given by its body in ELT; built directly so that equal calls give equal nodes."""
    if body == ELT:
        return A
    return MatrixExpr.__new__(ElementwiseApplyFunction, sp.Lambda(ELT, body), A)


def apply(fn, A):
    """The canonical elementwise application of fn (class or Lambda) to the matrix A."""
    return elementwise(canonical_body(body_of(fn)), A)
