"""LaTeX for expressions and derivations, in the seeds' notation, with the notation as options."""
import re
from dataclasses import dataclass, field

import sympy as sp
from sympy.printing.latex import LatexPrinter as SympyLatexPrinter
from sympy.printing.precedence import PRECEDENCE

from ..core.tex import safe_tex
from ..errors import InvalidArgument
from .text import MatrixNotation, _applied

_LAYERED = re.compile(r"^(delta(?:_[A-Za-z]+)?|[A-Za-z]+?)(\d+|\((?:l(?:[+-]1)?|\d+)\))(?:_(\d+|[a-z](?:[+-]1)?))?$")   # W2; W(l+1) of a generic layer; a(2); H1_t-1 of a generic step
_GREEK = {"delta": r"\delta", "lambda": r"\lambda", "theta": r"\theta", "Theta": r"\Theta", "mu": r"\mu",
          "epsilon": r"\varepsilon", "gamma": r"\gamma", "beta": r"\beta"}


# the characters TeX reads as commands, escaped for math mode, in one pass
_MATH_SPECIAL = str.maketrans({**{c: "\\" + c for c in "_{}$&#%"}, "\\": r"\backslash{}", "^": r"\hat{}",
                               "~": r"\sim{}"})


def _upright(name):
    r"""Any other name, upright and with TeX's special characters escaped: X_1_2 as \mathrm{X\_1\_2}."""
    return r"\mathrm{%s}" % name.translate(_MATH_SPECIAL)


@dataclass(frozen=True)
class Notation:
    """How symbols are written: ⊙ symbol, transpose mark, layer index position, bold matrices, renamings."""

    hadamard: str = r"\odot"
    transpose: str = r"\top"            # or "T", r"\intercal"
    layer: str = "superscript"          # W^{(l)}; or "subscript": W_{l}
    bold: bool = False                  # \mathbf{W} for Latin matrix names
    names: dict = field(default_factory=dict)  # e.g. {"W": r"\Theta"} as in Andrew Ng's notes

    def __post_init__(self):
        safe_tex(self.hadamard, "notation hadamard")
        safe_tex(self.transpose, "notation transpose")
        if self.layer not in ("superscript", "subscript"):
            raise InvalidArgument(f"notation layer = {self.layer!r}: superscript or subscript")
        for name, tex in self.names.items():
            if not (isinstance(name, str) and re.fullmatch(r"[A-Za-z]+", name)):
                raise InvalidArgument(f"notation names: {name!r} is not a symbol name (letters)")
            safe_tex(tex, f"notation names.{name}")

    def symbol(self, name):
        """The LaTeX for a symbol name such as W2, delta1, X, lambda."""
        if name[:2] in ("R_", "V_") and _LAYERED.match(name[2:]):
            # R{Z^(l)}: Pearlmutter's R-operator of a value; V_{W^(l)}: the direction of a parameter
            inner = self.symbol(name[2:])
            return r"\mathcal{R}\{%s\}" % inner if name[0] == "R" else r"V_{%s}" % inner
        if re.fullmatch(r"X_[a-z]", name):
            return f"X_{{{name[2]}}}"   # X_t: the inputs at a generic step of a sequence
        match = _LAYERED.match(name)
        base, index, step = (match.group(1), match.group(2), match.group(3)) if match else (name, None, None)
        if base == "X" and index and index.isdigit() and step is None:
            return f"X_{{{index}}}"   # X1 … XT: the inputs of a sequence, by time step
        sub = ""
        if base.startswith("delta_"):   # δ_C of a named intermediate C
            base, sub = "delta", self.symbol(base[len("delta_"):])
        tex = self.names.get(base, _GREEK.get(base, base if re.fullmatch(r"[A-Za-z]+", base) else _upright(base)))
        if re.fullmatch(r"W[qkvoxh]", base) and base not in self.names:
            tex = f"W_{{{base[1]}}}"   # W_q, W_h: a weight by its role
        if sub or step:
            tex = f"{tex}_{{{sub}{',' if sub and step else ''}{step or ''}}}"
        if self.bold and tex.isalpha() and len(tex) == 1:
            tex = r"\mathbf{%s}" % tex
        if index is None:
            return tex
        index = index.strip("()")
        return f"{tex}^{{({index})}}" if self.layer == "superscript" else f"{tex}_{{{index}}}"


class LatexPrinter(MatrixNotation, SympyLatexPrinter):
    """SymPy's LaTeX printer with ⊙, ᵀ, tr, plain parentheses and the Notation's symbol names."""

    def __init__(self, notation=None):
        super().__init__({"mul_symbol": None})
        self.notation = notation or Notation()
        self.aliases = {}     # symbol -> its LaTeX where a document names it itself (t_0 for a temporary)

    def _print_MatrixSymbol(self, expr):
        return self.aliases.get(expr) or self.notation.symbol(expr.name)

    def _print_Symbol(self, expr, style="plain"):
        if expr in self.aliases:
            return self.aliases[expr]
        if expr in self.printed:
            return expr.name
        if expr.name in _GREEK or expr.name in self.notation.names:
            return self.notation.symbol(expr.name)
        if re.fullmatch(r"[A-Za-z]+\((l(?:[+-]1)?|\d+)\)", expr.name):
            return self.notation.symbol(expr.name)   # a layer's quantity: a(2) as a^{(2)}
        constant = re.fullmatch(r"([A-Za-z])_([a-z])(\d+)", expr.name)
        if constant:   # a layer's constant: d_k2 (d_k of layer 2) as d_k^{(2)}
            base, sub, l = constant.groups()
            return f"{base}_{{{sub}}}^{{({l})}}" if self.notation.layer == "superscript" else f"{base}_{{{sub},{l}}}"
        if re.fullmatch(r"[A-Za-z]+_\{l[+-]\d\}", expr.name):
            return expr.name   # the size of a generic layer's neighbour
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?", expr.name):
            return _upright(expr.name)  # never raw TeX from a name
        return super()._print_Symbol(expr)

    def _print_Transpose(self, expr):
        base = self.parenthesize(expr.arg, PRECEDENCE["Pow"])
        if "^" in base and not base.startswith("("):
            base = "{%s}" % base
        return f"{base}^{{{self.notation.transpose}}}"

    def norm_power(self, u, p, kind):
        norm = r"\lVert %s \rVert_%s" % (u, kind)
        return norm if p == 1 else f"{norm}^{{{self._print(p)}}}"

    def _print_Inverse(self, expr):
        base = self.parenthesize(expr.arg, PRECEDENCE["Pow"])
        return f"{{{base}}}^{{-1}}" if "^" in base else f"{base}^{{-1}}"

    divide_symbol = r"\oslash"

    @property
    def hadamard_symbol(self):
        return self.notation.hadamard

    def one(self):
        return r"\mathbf{1}"

    def _hadamard_power(self, expr):
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"])
        base = f"{{{base}}}" if "^" in base else base
        return f"{base}^{{\\circ {self._print(expr.exp)}}}"

    product_symbol = " "

    def _coefficient(self, c):
        # \frac{1}{m} needs no parentheses; a sum does
        return f"({self._print(c)})" if isinstance(c, sp.Add) else self._print(c)

    scale_symbol = r"\,"

    def _trace(self, arg):
        return r"\mathrm{tr}(%s)" % self._print(arg)

    def _print_LogDet(self, expr, exp=None):
        tex = r"\log|%s|" % self._print(expr.arg)
        return tex if exp is None else r"(%s)^{%s}" % (tex, exp)

    def _print_Determinant(self, expr):
        return r"|%s|" % self._print(expr.arg)

    def _print_OneMatrix(self, expr):
        # 1 in elementwise algebra (1 − A, of any shape); in a product, ones_factor writes 1ₘ, 1ₘᵀ
        return r"\mathbf{1}"

    def _ones(self, k):
        return r"\mathbf{1}_{%s}" % self._print(k)

    def ones_factor(self, M):
        # in a product, the all-ones vector with its size: b 1_mᵀ, δ 1_m, and 1_k 1_kᵀ for the k × k all-ones matrix
        if M.rows != 1 and M.cols != 1:
            return r"%s %s^{%s}" % (self._ones(M.rows), self._ones(M.cols), self.notation.transpose)
        if M.rows == 1 and M.cols != 1:
            return r"%s^{%s}" % (self._ones(M.cols), self.notation.transpose)
        return self._ones(M.rows) if M.rows != 1 else r"\mathbf{1}"

    def _print_MatrixElement(self, expr):
        # an entry of a column vector has one index: b_i, not b_{i,0}
        parent = self.parenthesize(expr.parent, PRECEDENCE["Atom"], strict=True)
        if expr.parent.cols == 1 and expr.j == 0:
            index = self._print(expr.i)      # b_i of a column
        elif expr.parent.rows == 1 and expr.i == 0:
            index = self._print(expr.j)      # δ_k of a row
        else:
            index = f"{self._print(expr.i)}{self._print(expr.j)}"
        return f"{{{parent}}}_{{{index}}}"

    def _print_ZeroMatrix(self, expr):
        return r"\mathbf{0}"

    def _print_Identity(self, expr):
        return "I"

    def _print_DiagMatrix(self, expr):
        return r"\operatorname{diag}(%s)" % self._print(expr.args[0])

    def _print_FirstMax(self, expr):
        # [T_j = max_k T_k], the first of equal ones
        return r"[%s = \max_{k} %s]" % (self._print(expr.taps[expr.j]), r"\{%s\}" % ", ".join(
            self._print(t) for t in expr.taps))

    def _print_Softmax(self, expr):
        causal = r"_{\mathrm{causal}}" if expr.causal else ""
        return r"\operatorname{softmax}%s(%s)" % (causal, self._print(expr.arg))

    def _print_KroneckerProduct(self, expr):
        return r" \otimes ".join(self._kron_factor(a) for a in expr.args)

    def _kron_factor(self, M):
        # I_p ⊗ A: the identity with its size, which the product does not tell
        if isinstance(M, sp.Identity):
            return r"I_{%s}" % self._print(M.rows)
        return self.parenthesize(M, PRECEDENCE["Mul"], strict=True)

    def _print_Commutation(self, expr):
        return r"K_{%s,%s}" % (self._print(expr.args[0]), self._print(expr.args[1]))

    def _print_Vec(self, expr):
        return r"\operatorname{vec}(%s)" % self._print(expr.arg)

    def _print_Select(self, expr):
        # a selection matrix E2_1: its letter, its layer, its head or tap
        return self.notation.symbol(expr.name)

    def _print_Heaviside(self, expr, exp=None):
        return _power(r"[%s > 0]" % self._print(expr.args[0]), exp)

    def _print_ScalarFunctionBase(self, expr, exp=None):
        # σ(x), relu(x), a registered activation by its LaTeX name (\operatorname{name} by default)
        name = expr.latex_name or r"\operatorname{%s}" % type(expr).__name__.replace("_", r"\_")
        return _power(r"%s(%s)" % (name, ", ".join(self._print(a) for a in expr.args)), exp)

    def _print_leaky_relu(self, expr, exp=None):
        return _power(r"%s_{%s}(%s)" % (expr.latex_name, self._print(expr.args[1]), self._print(expr.args[0])), exp)

    def _print_Differential(self, expr):
        # dX, d log(A) for a function's value, d(X + Y) otherwise
        inner = self._print(expr.arg)
        if isinstance(expr.arg, (sp.MatrixSymbol, sp.Symbol)):
            return r"\mathrm{d}" + inner
        return r"\mathrm{d}\," + inner if _applied(expr.arg) else r"\mathrm{d}(%s)" % inner

    _print_ScalarDifferential = _print_Differential

    def _print_Function(self, expr, exp=None):
        # plain parentheses: log(A), tanh(Z), exp(Z)
        name = expr.func.__name__
        if name in ("log", "exp", "tanh", "sin", "cos", "tan", "sinh", "cosh"):
            s = "\\%s(%s)" % (name, ", ".join(self._print(a) for a in expr.args))
            return s if exp is None else f"{s}^{{{exp}}}"
        return super()._print_Function(expr, exp)

    _print_log = _print_exp = _print_tanh = _print_Function


def _power(tex, exp):
    """f(x), or f(x)^{p} when SymPy prints the power p of a function through it."""
    return tex if exp is None else f"{tex}^{{{exp}}}"


def latex(expr: sp.Basic, notation: "Notation | None" = None) -> str:
    """expr as LaTeX (math mode content)."""
    return LatexPrinter(notation).doprint(expr)


_WHERE = r"\mathrm{where} \mathopen{}\left("
_LEFT, _RIGHT = re.compile(r"\\left(?![A-Za-z])"), re.compile(r"\\right(?![A-Za-z])")


def _closing(tex, k):
    """The index of the \\right) that closes the \\left( ending at k, and the indices of the commas between them at
    its own depth (braces and \\left … \\right pairs nest)."""
    depth, commas = 0, []
    while k < len(tex):
        if _LEFT.match(tex, k) or tex[k] == "{":
            depth += 1
        elif _RIGHT.match(tex, k) or tex[k] == "}":
            if depth == 0:
                return k, commas
            depth -= 1
        elif tex[k] == "," and depth == 0:
            commas.append(k)
        k += 1
    raise InvalidArgument(f"unbalanced where(…) in {tex!r}")


def where_as_cases(tex):
    r"""latexify's where(c, a, b) as mathematics: the cases a if c, b otherwise, and a fraction whose numerator it is
    case by case (where(c, a, b)/d = a/d if c, b/d otherwise, in display style); 1.0 as 1."""
    start = tex.find(_WHERE)
    if start < 0:
        return tex
    end, commas = _closing(tex, start + len(_WHERE))
    if len(commas) != 2:
        raise InvalidArgument(f"where(…) with {len(commas) + 1} arguments in {tex!r}")
    c, a, b = (re.sub(r"(?<![\d.])(\d+)\.0(?!\d)", r"\1", s).strip() for s in
               (tex[start + len(_WHERE):commas[0]], tex[commas[0] + 1:commas[1]],
                tex[commas[1] + 1:end].rstrip().removesuffix(r"\mathclose{}")))   # the \right)'s spacing hint
    after = end + len(r"\right)")
    before = tex[:start].rstrip()
    if before.endswith(r"\frac{") and tex.startswith("}{", after):   # where(c, a, b)/d, case by case
        over, _ = _closing(tex, after + 2)
        d = tex[after + 2:over]
        a, b = rf"\dfrac{{{a}}}{{{d}}}", rf"\dfrac{{{b}}}{{{d}}}"   # full size, as the fraction was
        before, after = before[:-len(r"\frac{")], over + 1
    cases = rf"\begin{{cases}} {a} & \text{{if }} {c} \\ {b} & \text{{otherwise}} \end{{cases}}"
    return before + (" " if before and not before.endswith((" ", "{")) else "") + cases + where_as_cases(tex[after:])
