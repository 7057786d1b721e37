"""The registries of activations and losses: one entry per name, the one source for network construction, the
parser, the command line, the printers, code generation and verification specifications."""
import keyword
from dataclasses import dataclass, field
from typing import Callable, Optional

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower

from ..errors import InvalidArgument, InvalidType, NotElementwise
from . import expr, functions
from .expr import matadd, matmul, tp
from .functions import (ELT, DefinedBase, LogSoftmax, apply, canonical_body, defined, elementwise, leaky_relu,
                        log_softplus, relu, sigmoid, softplus, softplus_ratio)
from .hadamard import Image
from .tex import safe_tex


@dataclass(frozen=True)
class Activation:
    """An activation σ: its name, σ(x) as a SymPy expression of x, and what code may read off it."""

    name: str
    function: Optional[Callable]  # x -> σ(x); None for softmax, which normalises each sample (not elementwise)
    same_sign: bool = False       # σ(z) > 0 exactly where z > 0 (rectifiers): the mask [Z > 0] is read off A
    code_forms: Optional[Callable] = None  # (Z, A) -> [(Hadamard factors, the one factor code computes instead)]

    @property
    def elementwise(self):
        return self.function is not None

    @property
    def body(self):
        """σ(x) with x the canonical variable ELT; None for softmax."""
        return canonical_body(sp.sympify(self.function(ELT), strict=True)) if self.elementwise else None

    def definition(self):
        """σ as a SymPy Lambda of one real variable, for a verification that evaluates it on its own."""
        x = sp.Symbol("x", real=True)
        body = self.body
        if isinstance(body, DefinedBase):
            body = type(body).definition(ELT)   # a registered activation: its definition, not its name
        return sp.Lambda(x, body.xreplace({ELT: x}))

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Logits:
    """A loss written with the logits Z of its output layer, for code: form(Z, Y, σ(Z)) is the summed loss; `note`
    says why the form is the same loss and better computed (a comment in the generated code)."""

    form: Callable
    note: str


@dataclass(frozen=True)
class Loss:
    """A loss: ℓ(a, y) of one output entry, summed over outputs and samples (then divided by m for reduction "mean")."""

    name: str
    per_entry: Callable               # (a, y) -> ℓ(a, y)
    outputs: Optional[tuple] = None   # the output activations it is defined for; None: any
    why: str = ""                     # why only those
    per_output: bool = False          # divided by the number of outputs n_L as well (mse)
    matrix: Optional[Callable] = None  # (A, Y) -> Σ ℓ(A_ij, Y_ij) in trace form; None: tr(1 ℓ(A, Y)) from per_entry
    logits: dict = field(default_factory=dict)  # output activation -> Logits

    def total(self, A, Y, outputs):
        """Σ_ij ℓ(A_ij, Y_ij) as a matrix expression (trace form), divided by the number of outputs when per_output."""
        data = self.matrix(A, Y) if self.matrix else _summed(self.name, self.per_entry, A, Y)
        return data / outputs if self.per_output else data

    def definition(self):
        """ℓ as a SymPy Lambda of (a, y), for a verification that evaluates and differentiates it on its own."""
        a, y = sp.symbols("a y", real=True)
        return sp.Lambda((a, y), sp.sympify(self.per_entry(a, y), strict=True))

    def __str__(self):
        return self.name


def _summed(name, per_entry, A, Y):
    """Σ_ij ℓ(A_ij, Y_ij) = tr(1 ℓ(A, Y)): ℓ applied entrywise by the Hadamard algebra's image (a ↦ A, y ↦ Y)."""
    image = Image(A.shape)
    try:
        entries = image.back(image.from_scalar(per_entry(image.atom(A), image.atom(Y))))
    except NotElementwise as e:
        # ℓ(a, y) = g(a − y) where ℓ(y + t, y) reads no y (Huber, pinball): g applied to A − Y
        t, y = sp.symbols("t y", real=True)
        g = sp.sympify(per_entry(y + t, y), strict=True)
        if y in g.free_symbols:
            a = sp.Symbol("a", real=True)
            mixed = e.args[0].xreplace({image.symbol_of[A]: a, image.symbol_of[Y]: y})
            raise InvalidArgument(f"loss {name}: ℓ(a, y) = {per_entry(a, y)} takes a and y together in {mixed}, "
                                  f"which is no function of a − y nor of a and y apart; write ℓ with functions of a, "
                                  f"y or a − y each") from None
        entries = elementwise(g.xreplace({t: ELT}), matadd(A, matmul(-1, Y)))
    # Σ_ij M_ij = tr(1_{cols×rows} M)
    return sp.Trace(matmul(sp.OneMatrix(A.cols, A.rows), entries))


ACTIVATIONS = {}
"""name -> Activation: identity, sigmoid, tanh, relu, leaky_relu, softplus, softmax, and every registered one."""
LOSSES = {}
"""name -> Loss: half_sse, mse, bce, softmax_ce, and every registered one."""
# the words the parser reads as functions of a matrix
MATRIX_FUNCTIONS = ("tr", "det", "logdet", "inv", "sum", "norm2")


def _taken(name):
    """Whether `name` already means something to SymPy, to the toolkit's functions and nodes, or to the parser: a
    function class of that name would be printed as the other (SymPy's printers dispatch on class names)."""
    return hasattr(sp, name) or hasattr(functions, name) or hasattr(expr, name) or name in MATRIX_FUNCTIONS


def _name(name, table, what):
    if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name) and name.isascii()):
        raise InvalidArgument(f"register_{what}: the name {name!r} must be an identifier (letters, digits, _)")
    if name in table:
        raise InvalidArgument(f"register_{what}: {name!r} is already registered")
    if what == "activation" and _taken(name):
        raise InvalidArgument(f"register_activation: {name!r} is already the name of a function or class of SymPy "
                              f"or derive (or a word of the parser); choose another name")
    return name


def _scalar_function(function, arity, what, name):
    """function's value at fresh real symbols, checked: a SymPy expression of exactly those variables."""
    if not callable(function) or isinstance(function, str):
        raise InvalidType(f"register_{what} {name}: the function must be a Python callable on SymPy scalars, "
                          f"got {type(function).__name__}")
    xs = sp.symbols("_x0:%d" % arity, real=True)
    value = function(*xs)
    if not isinstance(value, sp.Expr) or value.is_Matrix:
        raise InvalidType(f"register_{what} {name}: the function must return a SymPy scalar expression, got "
                          f"{type(value).__name__}")
    extra = value.free_symbols - set(xs)
    if extra:
        raise InvalidArgument(f"register_{what} {name}: the function uses free symbols {sorted(map(str, extra))}")
    if xs[0] not in value.free_symbols:
        raise InvalidArgument(f"register_{what} {name}: the function does not depend on its first argument")
    return value


def register_activation(name: str, function: Callable[[sp.Basic], sp.Basic], latex: str | None = None,
                        same_sign: bool = False) -> "Activation":
    """Register the elementwise activation `name` with σ(x) = function(x) (SymPy scalars, e.g.
    `lambda x: x * derive.sigmoid(x)`); documents write it `latex` (default \\operatorname{name}). `same_sign`
    declares σ(z) > 0 exactly where z > 0, so that code reads the mask [Z > 0] off A. Returns the entry."""
    _name(name, ACTIVATIONS, "activation")
    _scalar_function(function, 1, "activation", name)
    cls = defined(name, function, safe_tex(latex, f"register_activation {name}: latex") if latex else None)
    ACTIVATIONS[name] = entry = Activation(name, cls, same_sign=same_sign)
    return entry


def register_loss(name: str, per_entry: Callable[[sp.Basic, sp.Basic], sp.Basic]) -> "Loss":
    """Register the loss `name` with ℓ(a, y) = per_entry(a, y) for one output entry (SymPy scalars, e.g.
    `lambda a, y: sympy.log(sympy.cosh(a - y))`), summed over outputs and samples. Returns the entry."""
    _name(name, LOSSES, "loss")
    _scalar_function(per_entry, 2, "loss", name)
    n = sp.Symbol("n", integer=True, positive=True)
    _summed(name, per_entry, sp.MatrixSymbol("A", n, n), sp.MatrixSymbol("Y", n, n))   # entrywise, or an error now
    LOSSES[name] = entry = Loss(name, per_entry)
    return entry


def activation(name):
    """The registered activation `name`; an InvalidArgument listing the names otherwise."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise InvalidArgument(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def loss(name):
    """The registered loss `name`; an InvalidArgument listing the names otherwise."""
    if not isinstance(name, str) or name not in LOSSES:
        raise InvalidArgument(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]


# ---- the built-in activations -------------------------------------------------------------------------------

def _softplus_forms(Z, A):
    # A^∘(−1) ⊙ σ(Z) = σ(Z)/softplus(Z), computed as one function: both factors underflow below z ≈ −745
    return [({HadamardPower(A, -1), apply(sigmoid, Z)}, apply(softplus_ratio, Z))]


for _entry in (Activation("identity", lambda x: x),
               Activation("sigmoid", sigmoid),
               Activation("tanh", sp.tanh),
               Activation("relu", relu, same_sign=True),
               Activation("leaky_relu", lambda x: leaky_relu(x, sp.Rational(1, 100)), same_sign=True),
               Activation("softplus", softplus, code_forms=_softplus_forms),
               Activation("softmax", None)):
    ACTIVATIONS[_entry.name] = _entry


# ---- the built-in losses, in trace form: Σ_ij P_ij Q_ij = tr(Pᵀ Q) ---------------------------------------------

def _error(A, Y):
    return matadd(A, matmul(-1, Y))


def _log(M):
    return M.applyfunc(sp.log)


def _bce(A, Y):
    # −Σ [y log a + (1 − y) log(1 − a)]
    J = sp.OneMatrix(*A.shape)
    return -sp.Trace(matadd(matmul(tp(Y), _log(A)), matmul(tp(matadd(J, matmul(-1, Y))),
                                                           _log(matadd(J, matmul(-1, A))))))


def _bce_logits(Z, Y, A):
    J = sp.OneMatrix(*Z.shape)
    return sp.Trace(matadd(matmul(tp(Y), apply(softplus, matmul(-1, Z))),
                           matmul(tp(matadd(J, matmul(-1, Y))), apply(softplus, Z))))


for _loss in (
        # ½ Σ_samples ‖a − y‖² = ½ tr((A − Y)ᵀ(A − Y))
        Loss("half_sse", lambda a, y: (a - y) ** 2 / 2,
             matrix=lambda A, Y: sp.Rational(1, 2) * sp.Trace(matmul(tp(_error(A, Y)), _error(A, Y)))),
        # Σ_samples (1/n_L) ‖a − y‖²
        Loss("mse", lambda a, y: (a - y) ** 2, per_output=True,
             matrix=lambda A, Y: sp.Trace(matmul(tp(_error(A, Y)), _error(A, Y)))),
        Loss("bce", lambda a, y: -(y * sp.log(a) + (1 - y) * sp.log(1 - a)), outputs=("sigmoid",),
             why="binary cross-entropy is for independent sigmoid outputs; with softmax use softmax_ce",
             matrix=_bce, logits={"sigmoid": Logits(_bce_logits, "−[y log σ(z) + (1 − y) log(1 − σ(z))] = "
                                                                  "y softplus(−z) + (1 − y) softplus(z)")}),
        # −Σ y log a; with softmax, δ = a (1ᵀy) − y for any targets (a − y for targets that sum to 1)
        Loss("softmax_ce", lambda a, y: -y * sp.log(a), outputs=("softmax", "sigmoid", "softplus"),
             why="log A needs A > 0", matrix=lambda A, Y: -sp.Trace(matmul(tp(Y), _log(A))),
             logits={
                 "softmax": Logits(lambda Z, Y, A: -sp.Trace(matmul(tp(Y), LogSoftmax(Z, A.axis))),
                                   "−Σ y log softmax(z), with log softmax(z) = z − max z − log Σ exp(z − max z)"),
                 "sigmoid": Logits(lambda Z, Y, A: sp.Trace(matmul(tp(Y), apply(softplus, matmul(-1, Z)))),
                                   "−y log σ(z) = y softplus(−z): no log of a σ that rounds to 0"),
                 "softplus": Logits(lambda Z, Y, A: -sp.Trace(matmul(tp(Y), apply(log_softplus, Z))),
                                    "−y log softplus(z), log softplus(z) → z below −700 where softplus(z) "
                                    "underflows")})):
    LOSSES[_loss.name] = _loss
