"""Second order and non-scalar functions, by the same rule table: the Hessian (Magnus–Neudecker identification of
d²f = vec(dX)ᵀ H vec(dX)), the Hessian-vector product (the forward differential of the gradient along V), the
Jacobian of a matrix function (d vec F = J d vec X), the vector-Jacobian product, and gradients and Hessians in the
space of symmetric matrices."""
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct
from sympy.matrices.expressions.matexpr import MatrixElement

from ..core.expr import Commutation, d, has_differential, hadamard, kron, matadd, matmul, tp, unit, vec
from ..core.hadamard import simplify
from ..core.rules import Rule
from ..core.shapes import conform, memoised
from ..errors import InvalidArgument, ShapeError, UnsupportedOperation
from ..printing.text import step_lines, text
from .backward import Step, backward, form, prepare, zero_like
from .derivation import Result, _check_wrt, arguments, sym, symmetric_gradient
from .forward import tangent

# the identities that read a Hessian or a Jacobian off a differential linear in dX (column-major vec)
VEC = {
    "second": Rule("second differential", r"\mathrm{d}^2 f = \mathrm{d}\,\mathrm{tr}(G^\top \mathrm{d}X) = "
                   r"\mathrm{tr}(\mathrm{d}G^\top \mathrm{d}X) \text{ since } \mathrm{d}(\mathrm{d}X) = 0"),
    "product": Rule("vec of A dX B", r"\mathrm{vec}(A\,\mathrm{d}X\,B) = (B^\top \otimes A)\,\mathrm{vec}\,\mathrm{d}X"),
    "transpose": Rule("vec of dXᵀ", r"\mathrm{vec}(\mathrm{d}X^\top) = K\,\mathrm{vec}\,\mathrm{d}X"),
    "hadamard": Rule("vec of M ⊙ dX",
                     r"\mathrm{vec}(M \odot \mathrm{d}X) = \mathrm{diag}(\mathrm{vec}\,M)\,\mathrm{vec}\,\mathrm{d}X"),
    "trace": Rule("trace as a vec product", r"\mathrm{tr}(A^\top \mathrm{d}X) = (\mathrm{vec}\,A)^\top "
                  r"\mathrm{vec}\,\mathrm{d}X"),
    "identify": Rule("identify the Hessian", r"\mathrm{d}\,\mathrm{vec}\,G = H\,\mathrm{vec}\,\mathrm{d}X "
                     r"\Rightarrow \mathrm{d}^2 f = \mathrm{vec}(\mathrm{d}X)^\top H\,\mathrm{vec}\,\mathrm{d}X"),
    "direction": Rule("direction", r"Hv = \frac{\partial}{\partial\varepsilon} \nabla f(X + \varepsilon V)"
                      r"\big|_{\varepsilon=0} = \mathrm{d}G \text{ at } \mathrm{d}X = V"),
}


def linear_map(t, dX):
    """M with vec t = M vec dX, for t linear in dX (column-major vec): the rules of VEC applied recursively. A
    scalar t gives the row M with t = M vec dX."""
    n = dX.rows * dX.cols
    if t == dX:
        return sp.Identity(n)
    if not t.is_Matrix:
        return _row(t, dX)
    if isinstance(t, sp.ZeroMatrix) or not has_differential(t):
        return sp.ZeroMatrix(t.rows * t.cols, n)
    if isinstance(t, sp.MatAdd):
        return matadd(*[linear_map(u, dX) for u in t.args])
    if isinstance(t, sp.Transpose):
        # vec(Uᵀ) = K_{r,c} vec U
        return matmul(Commutation(t.arg.rows, t.arg.cols), linear_map(t.arg, dX))
    if isinstance(t, HadamardProduct):
        k = _varying(t.args, t)
        # vec(H ⊙ U) = diag(vec H) vec U
        H = hadamard(*t.args[:k], *t.args[k + 1:])
        return matmul(sp.DiagMatrix(vec(H)), linear_map(t.args[k], dX))
    if isinstance(t, sp.MatMul):
        coeff, mats = t.as_coeff_matrices()
        if has_differential(coeff):
            # vec(c(dX) R) = vec(R) c(dX) for a scalar c linear in dX
            return matmul(vec(matmul(*mats)), _row(coeff, dX))
        k = _varying(mats, t)
        U, A, B = mats[k], mats[:k], mats[k + 1:]
        # vec(A U B) = (Bᵀ ⊗ A) vec U
        left = tp(matmul(*B)) if B else sp.Identity(U.cols)
        right = matmul(*A) if A else sp.Identity(U.rows)
        return matmul(coeff, kron(left, right), linear_map(U, dX))
    raise UnsupportedOperation(type(t).__name__, t, "its vec is not a product with vec dX",
                               action="identify a Hessian or Jacobian of")


def _row(c, dX):
    """The row r with c = r vec dX, for a scalar c linear in dX."""
    if c == 0:
        return sp.ZeroMatrix(1, dX.rows * dX.cols)
    if isinstance(c, sp.Add):
        return matadd(*[_row(u, dX) for u in c.args])
    if isinstance(c, sp.Mul):
        k = _varying(c.args, c)
        return matmul(sp.Mul(*c.args[:k], *c.args[k + 1:]), _row(c.args[k], dX))
    if isinstance(c, sp.Trace):
        # tr U = vec(I)ᵀ vec U
        return matmul(tp(vec(sp.Identity(c.arg.rows))), linear_map(c.arg, dX))
    if isinstance(c, MatrixElement):
        # U_ij = vec(E_ij)ᵀ vec U
        return matmul(tp(vec(unit(c.parent.shape, c.i, c.j))), linear_map(c.parent, dX))
    raise UnsupportedOperation(type(c).__name__, c, "it is not a linear form of vec dX",
                               action="identify a Hessian or Jacobian of")


def _varying(args, t):
    varying = [k for k, a in enumerate(args) if has_differential(a)]
    if len(varying) != 1:
        raise UnsupportedOperation(type(t).__name__, t, "term is not linear in one differential",
                                   action="identify a Hessian or Jacobian of")
    return varying[0]


@dataclass(frozen=True)
class SecondDerivation(Result):
    """The recorded derivation of a Hessian or a Hessian-vector product: the gradient's reverse sweep (`first`),
    then the rules applied to the gradient forward (`steps`) and, for a Hessian, its identification. Its code:
    .numpy(what) compiles one of PROGRAMS ("hessian" or "hvp", and "gradient_and_…" with the gradient from one
    pass)."""

    kind: str                 # "hessian" or "hvp"
    f: sp.Basic
    wrt: sp.Basic
    where: tuple
    gradient: sp.Basic        # G = ∂f/∂X (restricted to symmetric matrices if asked)
    first: tuple              # the gradient's steps
    steps: tuple              # the forward differential of G
    differential: sp.Basic    # dG, linear in dX (in V for an hvp)
    result: sp.Basic          # H (np × np) or H v (X's shape)
    direction: sp.Basic = None
    symmetric: object = False

    @property
    def PROGRAMS(self):
        return (self.kind, f"gradient_and_{self.kind}")

    def plan(self, what=None):
        """(arguments, statements, outputs) of one of PROGRAMS."""
        what = what or self.kind
        if what not in self.PROGRAMS:
            raise InvalidArgument(f"unknown program {what!r}; valid: {', '.join(self.PROGRAMS)}")
        args = arguments([self.f, self.result, self.gradient, self.wrt, *([self.direction] if self.direction is not None
                                                                          else [])], self.where)
        outputs = self.result if what == self.kind else {"gradient": self.gradient, self.kind: self.result}
        return args, list(self.where), outputs

    def specification(self):
        """What an independent verification needs, as plain data."""
        return {"kind": self.kind, "title": f"f = {text(self.f)}", "f": self.f, "wrt": self.wrt,
                "where": list(self.where), "direction": self.direction, "result": self.result,
                "gradient": self.gradient, "symmetric": bool(self.symmetric), "arguments": self.plan()[0]}

    def _docstring(self, what):
        name = "H" if self.kind == "hessian" else f"H {text(self.direction)}"
        body = f"{name} = {text(self.result)}."
        return body if what == self.kind else f"{{'gradient': ∂f/∂{text(self.wrt)}, '{self.kind}': {name}}}."

    def _module_head(self):
        return f"The {self.kind} of f = {text(self.f)} with respect to {text(self.wrt)}, generated by derive."

    def text(self, detail="textbook"):
        """f, the gradient, the forward differential of the gradient step by step, and the result."""
        lines = [f"f = {text(self.f)}", *(f"  where {text(Z)} = {text(E)}" for Z, E in self.where),
                 f"∂f/∂{text(self.wrt)} = G = {text(self.gradient)}"]
        lines += step_lines(self.steps, function="f")
        what = "H" if self.kind == "hessian" else f"H {text(self.direction)}"
        lines.append(f"{what} = {text(self.result)}")
        return "\n".join(lines)

    def __str__(self):
        return self.text()

    def __repr__(self):
        return f"<{self.kind} of f = {text(self.f)} with respect to {text(self.wrt)}>"


def _first(f, X, where, symmetric):
    """(f, definitions, G, the gradient's steps): what a second-order derivation starts from."""
    if symmetric == "entries":
        raise InvalidArgument("symmetric='entries' is for gradients; a Hessian is restricted with symmetric=True")
    _check_wrt([X])
    f, definitions = prepare(f, where)
    adjoints, first = backward(f, (X,), definitions)
    return f, definitions, symmetric_gradient(adjoints.get(X, zero_like(X)), symmetric), tuple(first)


@memoised
def hessian_derivation(f: sp.Basic, X: sp.MatrixSymbol, where: Mapping | None = None,
                       symmetric: bool | str = False) -> "SecondDerivation":
    """The SecondDerivation of the Hessian of the scalar f with respect to X (n × p): the np × np matrix H with
    d²f = vec(dX)ᵀ H vec(dX), column-major vec, written with ⊗, the commutation matrix K and diag(vec ·).
    symmetric=True restricts it to symmetric X: P H P with P = (I + K)/2."""
    f, definitions, G, first = _first(f, X, where, symmetric)
    dX = d(X)
    # a scalar x moves by 1: its tangent is the second derivative itself
    dG, steps = tangent(G, {X: dX if X.is_Matrix else sp.S.One}, definitions)
    steps = [Step(VEC["second"], d(f), form(G, dX), X), *steps]
    if not X.is_Matrix:
        H = dG
    else:
        H = linear_map(dG, dX)
        if symmetric:
            P = matmul(sp.Rational(1, 2), matadd(sp.Identity(X.rows * X.cols), Commutation(X.rows, X.cols)))
            H = matmul(P, H, P)
        steps.append(Step(VEC["identify"], dG, H, X))
    return SecondDerivation("hessian", f, X, tuple(definitions.items()), G, first, tuple(steps), dG, H,
                            symmetric=symmetric)


@memoised
def hvp_derivation(f: sp.Basic, X: sp.MatrixSymbol, V: sp.MatrixSymbol, where: Mapping | None = None,
                   symmetric: bool | str = False) -> "SecondDerivation":
    """The SecondDerivation of the Hessian-vector product H v (v = vec V) as a matrix of X's shape: the forward
    differential of ∂f/∂X along dX = V, no Hessian formed. symmetric=True: in the space of symmetric matrices (V
    projected onto it)."""
    _direction(X, V)
    f, definitions, G, first = _first(f, X, where, symmetric)
    seed = sym(V) if symmetric else V
    Hv, steps = tangent(G, {X: seed}, definitions)
    Hv = simplify(Hv, {}) if Hv.is_Matrix else Hv
    steps = [Step(VEC["direction"], d(G), Hv, X), *steps]
    return SecondDerivation("hvp", f, X, tuple(definitions.items()), G, first, tuple(steps), Hv, Hv, V, symmetric)


def _direction(X, V):
    if not isinstance(V, (sp.MatrixSymbol, sp.Symbol, sp.MatrixExpr, sp.Expr)):
        raise InvalidArgument(f"the direction V must be a SymPy matrix expression shaped like {X}, got {V!r:.80}")
    if X.is_Matrix != V.is_Matrix or (X.is_Matrix and X.shape != V.shape):
        raise ShapeError(f"the direction {V} has shape {getattr(V, 'shape', 'scalar')}; it must have the shape "
                         f"{getattr(X, 'shape', 'scalar')} of {X}")


def hessian(f: sp.Basic, X: sp.MatrixSymbol, where: Mapping | None = None, symmetric: bool | str = False) -> sp.Basic:
    """The Hessian of f with respect to X: np × np, d²f = vec(dX)ᵀ H vec(dX) (column-major vec)."""
    return hessian_derivation(f, X, where, symmetric).result


def hvp(f: sp.Basic, X: sp.MatrixSymbol, V: sp.MatrixSymbol, where: Mapping | None = None,
        symmetric: bool | str = False) -> sp.Basic:
    """H v as a matrix shaped like X: ∂/∂ε ∇f(X + εV) at ε = 0, derived forward (no Hessian formed)."""
    return hvp_derivation(f, X, V, where, symmetric).result


@memoised
def jacobian(F: sp.Basic, X: sp.MatrixSymbol, where: Mapping | None = None) -> sp.Basic:
    """J with d vec F = J d vec X (column-major vec): (rows·cols of F) × (rows·cols of X); the gradient's transpose
    (a row) for a scalar F."""
    _check_wrt([X])
    if not X.is_Matrix:
        raise InvalidArgument(f"jacobian: {X} is a scalar; differentiate with derive.gradient or derive.hvp")
    definitions = prepare(sp.S.Zero, where)[1]
    F = conform(sp.sympify(F, strict=True))
    dF, _ = tangent(F, {X: d(X)}, definitions)
    return linear_map(dF, d(X)) if (F.is_Matrix or dF != 0) else sp.ZeroMatrix(1, X.rows * X.cols)


def vjp(F: sp.Basic, X: sp.MatrixSymbol, G: sp.Basic, where: Mapping | None = None) -> sp.Basic:
    """∂ tr(Gᵀ F)/∂X: the vector-Jacobian product Jᵀ vec G as a matrix of X's shape (a backward pass through F)."""
    F = sp.sympify(F, strict=True)
    if F.is_Matrix != G.is_Matrix or (F.is_Matrix and F.shape != G.shape):
        raise ShapeError(f"vjp: the cotangent {G} has shape {getattr(G, 'shape', 'scalar')}; F has shape "
                         f"{getattr(F, 'shape', 'scalar')}")
    _check_wrt([X])
    contracted = sp.Trace(matmul(tp(G), F)) if F.is_Matrix else G * F
    adjoints, _ = backward(contracted, (X,), where)
    return adjoints.get(X, zero_like(X))


__all__ = ["SecondDerivation", "hessian", "hessian_derivation", "hvp", "hvp_derivation", "jacobian", "sym",
           "symmetric_gradient", "vjp"]
