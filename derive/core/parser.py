"""A small parser for matrix expressions typed by users: text -> SymPy objects (never eval, never sympify)."""
from collections.abc import Mapping
import difflib
import re
from dataclasses import dataclass

import sympy as sp

from ..errors import InvalidArgument, ParseError
from .expr import hadamard, matadd, matmul, tp
from .functions import ELT, canonical_body, elementwise
from .registry import ACTIVATIONS, MATRIX_FUNCTIONS

TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|"
                   r"(?P<op>\.\*|\.T|⊙|[-+*/'^(),]))")
def elementwise_functions():
    """name -> scalar function: exp, log and every registered elementwise activation (identity aside)."""
    return {"exp": sp.exp, "log": sp.log, **{name: act.function for name, act in ACTIVATIONS.items()
                                            if act.elementwise and name != "identity"}}


def functions():
    """The names the parser reads as functions."""
    return (*MATRIX_FUNCTIONS, *elementwise_functions())
# what other tools call a function the parser knows: a suggestion, never read as it
ALIASES = {"trace": "tr", "determinant": "det", "inverse": "inv", "sigma": "sigmoid",
           "logistic": "sigmoid", "ln": "log"}
MAX_DEPTH = 100        # parentheses and function calls nested at most this deep (the parser recurses)
MAX_POWER = 64         # X^k for k up to this (its differential has k terms)
MAX_DIGITS = 15        # numbers of at most this many digits


@dataclass
class Token:
    kind: str
    value: str
    position: int


def tokens(text):
    out, k = [], 0
    while k < len(text):
        if text[k:].strip() == "":
            break
        match = TOKEN.match(text, k)
        if not match:
            pos = len(text[:k]) + (len(text[k:]) - len(text[k:].lstrip()))
            raise ParseError(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        value, start = match.group(kind), match.start(kind)
        if kind == "name" and value == "o":
            kind = "op"  # o is the Hadamard product, as ⊙
        out.append(Token(kind, value, start))
        k = match.end()
    out.append(Token("end", "", len(text)))
    return out


class Parser:
    """Recursive descent: sum := product (± product)*; product := unary ((*|.*|⊙|o|/) unary)*;
    unary := -unary | postfix; postfix := primary (' | .T | ^number)*; primary := number | name |
    function(sum) | (sum)."""

    def __init__(self, text, symbols):
        self.text, self.symbols = text, symbols
        self.toks, self.k = tokens(text), 0
        self.depth = 0

    def peek(self):
        return self.toks[self.k]

    def take(self, value=None, kind=None):
        tok = self.peek()
        if (value is not None and tok.value != value) or (kind is not None and tok.kind != kind):
            expected = repr(value) if value is not None else kind
            found = tok.value or "the end"
            raise ParseError(self.text, tok.position, f"expected {expected}, found {found!r}")
        self.k += 1
        return tok

    def error(self, tok, message):
        return ParseError(self.text, tok.position, message)

    def parse(self):
        out = self.sum()
        if self.peek().kind != "end":
            tok = self.peek()
            raise self.error(tok, f"expected an operator or the end, found {tok.value!r}")
        return out

    def sum(self):
        left = self.product()
        while self.peek().value in ("+", "-"):
            tok = self.take()
            right = self.product()
            if left.is_Matrix != right.is_Matrix or (left.is_Matrix and left.shape != right.shape):
                raise self.error(tok, f"cannot add shapes {_shape(left)} and {_shape(right)}")
            right = right if tok.value == "+" else (matmul(-1, right) if right.is_Matrix else -right)
            left = matadd(left, right) if left.is_Matrix else left + right
        return left

    def product(self):
        left = self.unary()
        while self.peek().value in ("*", ".*", "⊙", "o", "/"):
            tok = self.take()
            right = self.unary()
            if tok.value == "/":
                if right.is_Matrix:
                    raise self.error(tok, "can only divide by a scalar")
                if right == 0:
                    raise self.error(tok, "division by zero")
                left = matmul(left, 1 / right) if left.is_Matrix else left / right
            elif tok.value == "*":
                if left.is_Matrix and right.is_Matrix:
                    if left.cols != right.rows:
                        raise self.error(tok, f"matrix product of shapes {_shape(left)} and {_shape(right)}")
                    left = matmul(left, right)
                else:
                    left = matmul(left, right) if (left.is_Matrix or right.is_Matrix) else left * right
            else:
                if not (left.is_Matrix and right.is_Matrix) or left.shape != right.shape:
                    raise self.error(tok, f"Hadamard product needs equal shapes, got {_shape(left)} and {_shape(right)}")
                left = hadamard(left, right)
        return left

    def unary(self):
        if self.peek().value == "-":
            self.take()
            operand = self.unary()
            return matmul(-1, operand) if operand.is_Matrix else -operand
        return self.postfix()

    def postfix(self):
        out = self.primary()
        while self.peek().value in ("'", ".T", "^"):
            tok = self.take()
            if tok.value == "^":
                exponent = self.take(kind="number")
                p = self.number(exponent)
                # X^64^64 is X^4096: the exponents of a chain multiply
                total = p * (out.exp if isinstance(out, (sp.Pow, sp.MatPow)) and out.exp.is_number else 1)
                if abs(total) > MAX_POWER:
                    raise self.error(exponent, f"exponent {total} is too large (at most {MAX_POWER})")
                if out.is_Matrix and (out.rows != out.cols or not p.is_Integer or p < 1):
                    raise self.error(tok, f"a matrix power needs a square matrix and a positive integer, "
                                          f"got shape {_shape(out)} and {p}")
                out = sp.MatPow(out, p) if out.is_Matrix else out ** p
            else:
                out = tp(out) if out.is_Matrix else out
        return out

    def primary(self):
        tok = self.peek()
        if tok.kind == "number":
            self.take()
            return self.number(tok)
        if tok.value == "(":
            self.take()
            out = self.nested(tok)
            self.take(")")
            return out
        if tok.kind == "name":
            self.take()
            if tok.value in functions() and self.peek().value == "(":  # a name not called is a symbol
                self.take("(")
                arg = self.nested(tok)
                self.take(")")
                return self.function(tok, arg)
            if tok.value not in self.symbols:
                known = ", ".join(sorted(self.symbols)) or "none"
                called = self.peek().value == "("
                candidates = [*functions(), *ALIASES] if called else list(self.symbols)
                close = difflib.get_close_matches(tok.value.lower(), candidates, n=1, cutoff=.6)
                guess = ALIASES.get(close[0], close[0]) if close else None
                hint = f"; did you mean {guess!r}?" if guess else ""
                raise self.error(tok, f"unknown name {tok.value!r}{hint} (symbols: "
                                      f"{known}; functions: {', '.join(functions())})")
            return self.symbols[tok.value]
        raise self.error(tok, "expected a number, a name, a function or '('")

    def number(self, tok):
        digits = tok.value.replace(".", "")
        if len(digits) > MAX_DIGITS:
            raise self.error(tok, f"number with {len(digits)} digits (at most {MAX_DIGITS})")
        return sp.Rational(tok.value) if "." in tok.value else sp.Integer(tok.value)

    def nested(self, tok):
        """The sum inside parentheses or a call, at most MAX_DEPTH deep (the parser recurses)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(tok, f"nested more than {MAX_DEPTH} deep")
        out = self.sum()
        self.depth -= 1
        return out

    def function(self, tok, arg):
        name = tok.value
        scalar = elementwise_functions().get(name)
        if scalar is not None:
            return elementwise(canonical_body(scalar(ELT)), arg) if arg.is_Matrix else scalar(arg)
        if not arg.is_Matrix:
            raise self.error(tok, f"{name} needs a matrix argument")
        square = name in ("tr", "det", "logdet", "inv")
        if square and arg.rows != arg.cols:
            raise self.error(tok, f"{name} needs a square matrix, got shape {_shape(arg)}")
        if name == "tr":
            return sp.Trace(arg)
        if name == "det":
            return sp.Determinant(arg)
        if name == "logdet":
            return sp.log(sp.Determinant(arg))
        if name == "inv":
            return sp.Inverse(arg)
        if name == "sum":
            # Σ_ij M_ij = tr(1_{m×n} M)
            return sp.Trace(matmul(sp.OneMatrix(arg.cols, arg.rows), arg))
        # norm2: ‖M‖²_F = tr(MᵀM)
        return sp.Trace(matmul(tp(arg), arg))


def _shape(e):
    return f"{e.rows}×{e.cols}" if e.is_Matrix else "scalar"


def parse(text: str, shapes: Mapping[str, tuple[int | str, int | str]]) -> sp.Basic:
    """The SymPy expression of `text`; `shapes` maps each matrix name to (rows, cols) (ints or size names);
    other names may be scalars if listed with shape None."""
    symbols = {}
    for name, shape in shapes.items():
        if shape is None:
            symbols[name] = sp.Symbol(name)
        else:
            dims = [sp.Integer(d) if re.fullmatch(r"[0-9]+", str(d)) else sp.Symbol(str(d), integer=True, positive=True)
                    for d in shape]
            symbols[name] = sp.MatrixSymbol(name, *dims)
    return Parser(text, symbols).parse()


def parse_shape(spec):
    """'A=3x3', 'X=n×n', 't' (a scalar) -> (name, shape or None); sizes are positive integers or names."""
    usage = f"--shape {spec!r}: expected NAME=ROWSxCOLS, e.g. A=3x3 or X=n×n"
    name, _, dims = spec.partition("=")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InvalidArgument(usage)
    if not dims:
        return name, None
    parts = re.split(r"[x×]", dims)
    if len(parts) != 2 or not all(re.fullmatch(r"[0-9]+|[A-Za-z_][A-Za-z0-9_]*", p) for p in parts):
        raise InvalidArgument(usage)
    for p in parts:
        if p.isdigit() and not 1 <= int(p) < 10 ** MAX_DIGITS:
            raise InvalidArgument(f"--shape {spec!r}: a size must be between 1 and 10^{MAX_DIGITS}")
    return name, tuple(parts)
