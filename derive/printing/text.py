"""Plain-text printing of matrix expressions and derivations, in the seeds' notation."""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

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


def positive_first(terms):
    """The terms of a sum with the negated ones last: 1 - A rather than -A + 1."""
    return sorted(terms, key=lambda t: isinstance(t, sp.MatMul) and t.as_coeff_matrices()[0].is_negative is True)


class MatrixNotation(SafePrecedence):
    """Printer mixin for the documents' notation, shared by the text and LaTeX printers: sums with their positive
    terms first (1 − A, not −A + 1), products with the sign in front, σ(X) as its body with X in place of x."""

    product_symbol = "*"  # between the factors of a matrix product

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
        factors += [self.parenthesize(m, PRECEDENCE["Mul"]) for m in mats]
        return sign + self.product_symbol.join(factors)

    def _print_ElementwiseApplyFunction(self, expr):
        # σ(X) is σ's body with X for x: X in parentheses unless the body is one call f(x, …)
        body = body_of(expr.function)
        arg = self._print(expr.expr)
        if not (isinstance(body, sp.Function) and body.args[:1] == (ELT,)):
            arg = self.parenthesize(expr.expr, PRECEDENCE["Atom"] - 1)
        self.printed.add(sp.Symbol(arg))
        return self._print(body.xreplace({ELT: sp.Symbol(arg)}))

    def _print_MatAdd(self, expr):
        terms = positive_first(expr.args)
        out = self.parenthesize(terms[0], PRECEDENCE["Add"], strict=True)
        for t in terms[1:]:
            s = self.parenthesize(t, PRECEDENCE["Add"], strict=True)
            out += f" - {s[1:]}" if s.startswith("-") else f" + {s}"
        return out


class TextPrinter(MatrixNotation, StrPrinter):
    """Prints tr, ᵀ, ⁻¹, ⊙, |X| and σ(X) the way a derivation on paper does."""

    def _print_Trace(self, expr):
        return f"tr({self._print(expr.arg)})"

    def _print_Transpose(self, expr):
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "ᵀ"

    def _print_Inverse(self, expr):
        return self.parenthesize(expr.arg, PRECEDENCE["Pow"]) + "⁻¹"

    def _print_LogDet(self, expr):
        return f"log(|{self._print(expr.arg)}|)"

    def _print_Determinant(self, expr):
        return f"|{self._print(expr.arg)}|"

    def _print_HadamardProduct(self, expr):
        return " ⊙ ".join(self.parenthesize(a, PRECEDENCE["Mul"]) for a in expr.args)

    def _print_HadamardPower(self, expr):
        exp = self._print(expr.exp)
        exp = exp if expr.exp.is_Integer and expr.exp >= 0 else f"({exp})"
        return self.parenthesize(expr.base, PRECEDENCE["Pow"]) + "^∘" + exp

    def _print_OneMatrix(self, expr):
        return "1ᵀ" if expr.rows == 1 and expr.cols != 1 else "1"

    def _print_Identity(self, expr):
        return "I"

    def _print_MatrixSymbol(self, expr):
        # δ^(l) is named delta<l> so that generated code can use the name
        return "δ" + expr.name[5:] if expr.name.startswith("delta") else expr.name

    def _print_DiagMatrix(self, expr):
        return f"diag({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        # the step function as an Iverson bracket
        return f"[{self._print(expr.args[0])} > 0]"

    def _print_Softmax(self, expr):
        return f"softmax({self._print(expr.arg)})"

    def _print_LogSoftmax(self, expr):
        return f"log softmax({self._print(expr.arg)})"

    def _print_ScalarFunctionBase(self, expr):
        # σ(x), relu(x), a registered activation by name
        return f"{expr.text_name or type(expr).__name__}({', '.join(self._print(a) for a in expr.args)})"


def text(expr):
    """expr in plain text."""
    return TextPrinter().doprint(expr)


def step_lines(steps, indent="  ", limit=100, function="f"):
    """One line per step, `before  =  after  [rule]` (`before  ⇒  ∂f/∂X = G` for a gradient read off), the rule
    names aligned."""
    rows = [(f"{text(step.before)}  ⇒  ∂{function}/∂{text(step.node)} = {text(step.after)}"
             if step.rule is IDENTITIES["read off"] else f"{text(step.before)}  =  {text(step.after)}", step.rule.name)
            for step in steps]
    width = min(max((len(lhs) for lhs, _ in rows), default=0), limit)
    return [f"{indent}{lhs:<{width}}  [{name}]" for lhs, name in rows]
