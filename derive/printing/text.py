"""Plain-text printing of matrix expressions and derivations, in the seeds' notation."""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.hadamard import HadamardPower, HadamardProduct
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from ..core.expr import norm_base
from ..core.functions import ELT, body_of
from ..core.rules import IDENTITIES
from ..core.shapes import memoised


def safe_precedence(item):
    """SymPy's precedence, except for MatMul, where SymPy's own test (−M == M) evaluates M in full, and for
    σ(X), which prints as its body with X in place of x (exp(x) − x: a sum, not an atom)."""
    if isinstance(item, sp.MatMul):
        coeff, _ = item.as_coeff_matrices()
        return PRECEDENCE["Add"] if coeff.is_Number and coeff.is_negative else PRECEDENCE["Mul"]
    if isinstance(item, ElementwiseApplyFunction):
        return precedence(body_of(item.function))
    return precedence(item)


class SafePrecedence:
    """Printer mixin: parenthesize with safe_precedence, so printing never evaluates an expression; shapes are
    memoised while it prints."""

    @memoised
    def doprint(self, expr, *args, **kwargs):
        return super().doprint(expr, *args, **kwargs)

    def parenthesize(self, item, level, strict=False):
        p = safe_precedence(item)
        if p < level or (not strict and p <= level):
            return f"({self._print(item)})"
        return self._print(item)


def _applied(E):
    """Whether E prints as f(…): a function applied (log A, σ(Z)), no operator between operands."""
    if isinstance(E, ElementwiseApplyFunction):
        body = body_of(E.function)
        return isinstance(body, sp.Function) and body.args[:1] == (ELT,)
    return isinstance(E, sp.Function) and not isinstance(E, sp.Max)


def _reciprocal(M):
    """Whether M is B^∘−k, a denominator."""
    return isinstance(M, HadamardPower) and M.exp.is_number and M.exp.is_negative


def positive_first(terms):
    """The terms of a sum with the negated ones last: 1 - A rather than -A + 1."""
    return sorted(terms, key=lambda t: isinstance(t, sp.MatMul) and _negative(t.as_coeff_matrices()[0]))


def _negative(c):
    """Whether the scalar c is negative; of one holding a matrix (tanh(log|4I + A|)), whether its numeric factor is:
    SymPy's assumptions would run factor_terms into the matrix sum, which it cannot rebuild."""
    return (c.as_coeff_Mul()[0] if c.has(sp.MatrixExpr) else c).is_negative is True


class MatrixNotation(SafePrecedence):
    """Printer mixin for the documents' notation, shared by the text and LaTeX printers: sums with their positive
    terms first (1 − A, not −A + 1), products with the sign in front, σ(X) as its body with X in place of x."""

    product_symbol = "*"  # between the factors of a matrix product
    hadamard_symbol, divide_symbol, scale_symbol = "⊙", "⊘", " "
    prints_differentials = True   # Differential._sympystr hands dX to _print_Differential

    def __init__(self, settings=None):
        super().__init__(settings)
        self.printed = set()  # symbols that stand for an argument already printed, in an elementwise body

    def _coefficient(self, c):
        return self.parenthesize(c, PRECEDENCE["Mul"])

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_matrices()
        sign = "-" if coeff.is_Number and coeff.is_negative else ""
        coeff = -coeff if sign else coeff
        factors = ([] if coeff == 1 else [self._coefficient(coeff)])
        factors += [self.ones_factor(m) if isinstance(m, sp.OneMatrix) else self.parenthesize(m, PRECEDENCE["Mul"])
                    for m in mats]
        return sign + self.product_symbol.join(factors)

    def _print_ElementwiseApplyFunction(self, expr):
        # σ(X) is σ's body with X for x: X in parentheses unless the body is one call f(x, …)
        body = body_of(expr.function)
        arg = self._print(expr.expr)
        if not (isinstance(body, sp.Function) and body.args[:1] == (ELT,)):
            arg = self.parenthesize(expr.expr, PRECEDENCE["Atom"] - 1)
        self.printed.add(sp.Symbol(arg))
        return self._print(body.xreplace({ELT: sp.Symbol(arg)}))

    def _print_HadamardProduct(self, expr):
        # A ⊙ B^∘−1 is written A ⊘ B: the numerator's factors, then the denominator's; (A ⊙ B) ⊙ C as A ⊙ B ⊙ C
        args = [f for a in expr.args for f in (a.args if isinstance(a, HadamardProduct) else (a,))]
        expr = HadamardProduct(*args, evaluate=False) if len(args) != len(expr.args) else expr
        top = [a for a in expr.args if not _reciprocal(a)]
        bottom = [a.base if a.exp == -1 else HadamardPower(a.base, -a.exp) for a in expr.args if _reciprocal(a)]
        if not bottom:
            return f" {self.hadamard_symbol} ".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in expr.args)
        numerator = self._print(top[0] if len(top) == 1 else HadamardProduct(*top)) if top else self.one()
        denominator = bottom[0] if len(bottom) == 1 else HadamardProduct(*bottom)
        if len(top) == 1:
            numerator = self.parenthesize(top[0], PRECEDENCE["Mul"])
        elif top:
            numerator = f"({numerator})"
        return f"{numerator} {self.divide_symbol} {self.parenthesize(denominator, PRECEDENCE['Mul'])}"

    def _print_MatPow(self, expr):
        # (uᵀu)^p = ‖u‖₂^(2p) for a column u: a norm written as one
        u = norm_base(expr.base) if expr.base.shape == (1, 1) else None
        if u is None or u.shape[1] != 1:
            return super()._print_MatPow(expr)
        return self.norm_power(self._print(u), 2 * expr.exp, "2")

    def _print_Pow(self, expr, *args, **kwargs):
        # tr(uᵀu)^p = ‖u‖_F^(2p)
        u = norm_base(expr.base.arg) if isinstance(expr.base, sp.Trace) else None
        if u is None:
            return super()._print_Pow(expr, *args, **kwargs)
        return self.norm_power(self._print(u), 2 * expr.exp, "2" if u.shape[1] == 1 else "F")

    def norm_power(self, u, p, kind):
        norm = f"‖{u}‖{'₂' if kind == '2' else '_F'}"
        return norm if p == 1 else f"{norm}**{self.parenthesize(p, PRECEDENCE['Pow'], strict=True)}"

    def _print_HadamardPower(self, expr):
        if _reciprocal(expr):
            return self._print_HadamardProduct(HadamardProduct(expr, evaluate=False))
        return self._hadamard_power(expr)

    def _print_Trace(self, expr):
        # tr(c M) written c tr(M)
        arg = expr.arg
        if isinstance(arg, sp.MatMul):
            coeff, mats = arg.as_coeff_matrices()
            if coeff != 1:
                sign = "-" if coeff.is_Number and coeff.is_negative else ""
                coeff = -coeff if sign else coeff
                scale = "" if coeff == 1 else self._coefficient(coeff) + self.scale_symbol
                return sign + scale + self._trace(sp.MatMul(*mats) if len(mats) > 1 else mats[0])
        return self._trace(arg)

    def _print_KroneckerProduct(self, expr):
        return " ⊗ ".join(self.parenthesize(a, PRECEDENCE["Mul"], strict=True) for a in expr.args)

    def _print_MatAdd(self, expr):
        terms = positive_first(expr.args)
        out = self.parenthesize(terms[0], PRECEDENCE["Add"], strict=True)
        for t in terms[1:]:
            s = self.parenthesize(t, PRECEDENCE["Add"], strict=True)
            out += f" - {s[1:]}" if s.startswith("-") else f" + {s}"
        return out


class TextPrinter(MatrixNotation, StrPrinter):
    """Prints tr, ᵀ, ⁻¹, ⊙, |X| and σ(X) the way a derivation on paper does."""

    product_symbol = " "

    def _trace(self, arg):
        return f"tr({self._print(arg)})"

    def one(self):
        return "1"

    def _print_Transpose(self, expr):
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "ᵀ"

    def _print_Differential(self, expr):
        # dX, d log(A) for a function's value, d(X + Y) otherwise
        if isinstance(expr.arg, (sp.MatrixSymbol, sp.Symbol)):
            return "d" + self._print(expr.arg)
        if _applied(expr.arg):
            return "d " + self._print(expr.arg)
        return f"d({self._print(expr.arg)})"

    _print_ScalarDifferential = _print_Differential

    def _print_Inverse(self, expr):
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "⁻¹"

    def _print_LogDet(self, expr):
        return f"log(|{self._print(expr.arg)}|)"

    def _print_Determinant(self, expr):
        return f"|{self._print(expr.arg)}|"

    def _hadamard_power(self, expr):
        exp = self._print(expr.exp)
        exp = exp if expr.exp.is_Integer and expr.exp >= 0 else f"({exp})"
        return self.parenthesize(expr.base, PRECEDENCE["Pow"]) + "^∘" + exp

    def ones_factor(self, M):
        if M.rows != 1 and M.cols != 1:
            return "(1 1ᵀ)"
        return "1ᵀ" if M.rows == 1 and M.cols != 1 else "1"

    def _print_OneMatrix(self, expr):
        # 1 in elementwise algebra (1 − A, of any shape); in a product, ones_factor writes 1ᵀ for a row
        return "1"

    def _print_Identity(self, expr):
        return "I"

    def _print_MatrixSymbol(self, expr):
        # δ^(l) is named delta<l> so that generated code can use the name; a generic layer's as delta(l)
        return "δ" + expr.name[5:] if expr.name.startswith("delta") else expr.name

    def _print_DiagMatrix(self, expr):
        return f"diag({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        # the step function as an Iverson bracket
        return f"[{self._print(expr.args[0])} > 0]"

    def _print_FirstMax(self, expr):
        return f"[{self._print(expr.taps[expr.j])} = max{{{', '.join(self._print(t) for t in expr.taps)}}}]"

    def _print_Softmax(self, expr):
        return f"{'causal ' if expr.causal else ''}softmax({self._print(expr.arg)})"

    def _print_Select(self, expr):
        return expr.name

    def _print_Commutation(self, expr):
        return "K"

    def _print_Vec(self, expr):
        return f"vec({self._print(expr.arg)})"

    def _print_LogSoftmax(self, expr):
        return f"log softmax({self._print(expr.arg)})"

    def _print_ScalarFunctionBase(self, expr):
        # σ(x), relu(x), a registered activation by name
        return f"{expr.text_name or type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"


def text(expr):
    """expr in plain text."""
    return TextPrinter().doprint(expr)


def wrap_lines(lines, width=100, indent=6):
    """Each line broken at spaces to fit `width` columns, continuations indented."""
    out = []
    for line in lines:
        while len(line) > width:
            cut = line.rfind(" ", indent + 1, width)
            if cut <= indent:
                break
            out.append(line[:cut].rstrip())
            line = " " * indent + line[cut:].lstrip()
        out.append(line)
    return out


def step_lines(steps, indent="  ", limit=100, function="f"):
    """Each step as `[rule]` then `before = after` (`before ⇒ ∂f/∂X = G` for a gradient read off), in lines of
    at most `limit` columns."""
    out = []
    for step in steps:
        if step.rule is IDENTITIES["read off"]:
            rewrite = f"{text(step.before)}  ⇒  ∂{function}/∂{text(step.node)} = {text(step.after)}"
        else:
            rewrite = f"{text(step.before)}  =  {text(step.after)}"
        line = f"{indent}{rewrite}   [{step.rule.name}]"
        out += wrap_lines([line] if len(line) <= limit else [f"{indent}[{step.rule.name}]", f"{indent}  {rewrite}"],
                          limit, len(indent) + 4)
    return out
