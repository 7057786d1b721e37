"""Derivations as people write them: the math rows of a .tex, .md or .txt text, each read into a tree (never eval).

One reader for the toolkit's text syntax (W2', delta1, sigma'(Z1), .*, ∂L/∂W1), Unicode (δ⁽²⁾, W⁽²⁾ᵀ, ⊙, 𝟏) and
the LaTeX the documents print (\\delta^{(2)}, W^{(2)\\top}, \\odot, \\oslash, \\frac{\\partial L}{\\partial W^{(1)}},
\\operatorname{tr}, \\mathbf{1}, \\mathrm{d}X, aligned rows with &=). A tree is a tuple (kind, position, *parts).
"""
import re
from dataclasses import dataclass

from .errors import WrittenError

SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ᵀˡᴸ", "0123456789+-()TlL")
SUBSCRIPT = str.maketrans("₀₁₂₃₄₅₆₇₈₉₊₋₍₎ₘ", "0123456789+-()m")
# LaTeX commands read as a letter or an operator
COMMANDS = {r"\delta": "δ", r"\sigma": "σ", r"\varphi": "φ", r"\phi": "φ", r"\lambda": "λ", r"\Theta": "Θ",
            r"\theta": "θ", r"\partial": "∂", r"\odot": "⊙", r"\circ": "⊙", r"\oslash": "⊘", r"\cdot": "·",
            r"\times": "·", r"\top": "ᵀ", r"\intercal": "ᵀ", r"\prime": "'", r"\Rightarrow": "⇒", r"\implies": "⇒",
            r"\Longrightarrow": "⇒", r"\therefore": "⇒", r"\ell": "ℓ", r"\|": "‖", r"\lVert": "‖", r"\rVert": "‖",
            r"\Vert": "‖", r"\lvert": "|", r"\rvert": "|", r"\vert": "|", r"\{": "(", r"\}": ")", r"\coloneqq": "=", r"\equiv": "=", r"\approx": "≈",
            r"\tr": "tr", r"\exp": "exp", r"\log": "log", r"\ln": "log", r"\tanh": "tanh", r"\det": "det",
            r"\sum": "Σ", r"\nabla": "∇"}
SPACING = {r"\left", r"\right", r"\bigl", r"\bigr", r"\Bigl", r"\Bigr", r"\big", r"\Big", r"\biggl", r"\biggr",
           r"\quad", r"\qquad", r"\,", r"\;", r"\:", r"\!", r"\ ", r"\displaystyle", r"\nonumber", r"\notag"}
WRAPPERS = {r"\mathbf", r"\boldsymbol", r"\bm", r"\mathit", r"\mathsf", r"\operatorname", r"\mathrm", r"\text",
            r"\mathbb", r"\textrm", r"\mathcal"}
DROPPED = re.compile(r"\\(?:text|textrm|mbox|label|tag|intertext)\{[^{}]*\}|\\(?:begin|end)\{[a-z*]+\}(?:\{[^{}]*\})?"
                     r"|\\\[|\\\]|\$\$?|&|\\\\")
TOKEN = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)|(?P<command>\\(?:[A-Za-z]+|[,;:! |{}]))"
                   r"|(?P<word>leaky_relu|[A-Za-z]+[0-9]*)"
                   r"|(?P<script>[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾ᵀˡᴸ]+)|(?P<low>[₀₁₂₃₄₅₆₇₈₉₊₋₍₎ₘ]+)"
                   r"|(?P<op>\*\*|\.\*|\./|\.T|->|=>|[-+*/'′^_(){}\[\],=<>|δσφλΘθ∂∇⊙∘⊘·×ᵀ⇒⟹≈ℓ‖𝟏Σ−])")
MATH = re.compile(r"\\begin\{(align|aligned|equation|gather|gathered|eqnarray|multline|split|alignat)(\*?)\}"
                  r"|\\\[|\$\$")


@dataclass(frozen=True)
class Row:
    """One row of math: where it is (line, column of its first character in the source), and its text with every
    piece of markup blanked to spaces (so columns stay those of the source)."""

    line: int
    column: int
    text: str


def rows(text, kind="auto"):
    """The math rows of a derivation: every non-blank line of plain text (kind "txt"), or the display math and the
    inline math with an = or ⇒ of LaTeX and Markdown ("tex", "md"; "auto": by the markup). %, # and // lines are
    comments in plain text; a row is split at \\\\."""
    if kind == "auto":
        kind = "tex" if re.search(r"\$|\\begin\{|\\\[", text) else "txt"
    out, display = [], None   # the closer of the display math the line is in
    for number, line in enumerate(text.splitlines(), 1):
        source = line
        if kind == "tex":
            line = _uncommented(line)
        pieces = []   # (start, end) of math in this line
        if kind == "txt":
            stripped = line.strip()
            if stripped and not stripped.startswith(("%", "#", "//")):
                pieces.append((0, len(line)))
        else:
            k = 0
            while k < len(line):
                if display:   # inside display math until its own closer (an aligned inside $$ … $$ stays inside)
                    end = line.find(display, k)
                    pieces.append((k, end if end >= 0 else len(line)))
                    if end < 0:
                        break
                    k, display = end + len(display), None
                    continue
                start = MATH.search(line, k)
                inline = re.search(r"(?<!\\)\$([^$]+)\$", line[k:start.start() if start else len(line)])
                if inline:
                    a, b = k + inline.start(1), k + inline.end(1)
                    if re.search(r"=|\\Rightarrow|\\implies|⇒", line[a:b]):
                        pieces.append((a, b))
                    k = b + 1
                    continue
                if not start:
                    break
                display = {"$$": "$$", r"\[": r"\]"}.get(start.group(), rf"\end{{{start.group(1)}{start.group(2)}}}")
                k = start.end()
        for a, b in pieces:
            for c, d in _split_rows(line, a, b):
                blank = [" "] * len(source)
                blank[c:d] = line[c:d]
                math = DROPPED.sub(lambda m: " " * len(m.group()), "".join(blank))
                if math.strip().rstrip(".,;"):
                    out.append(Row(number, len(math) - len(math.lstrip()), _trailing(math)))
    return out


def _uncommented(line):
    """A LaTeX line with its % comment blanked (\\% is a percent sign)."""
    match = re.search(r"(?<!\\)%", line)
    return line if not match else line[:match.start()] + " " * (len(line) - match.start())


def _split_rows(line, a, b):
    r"""The (start, end) of the rows of line[a:b], split at \\ (a line break of aligned math)."""
    cuts = [m.start() for m in re.finditer(r"\\\\", line[a:b])]
    starts, ends = [a, *(a + c + 2 for c in cuts)], [*(a + c for c in cuts), b]
    return list(zip(starts, ends))


def _trailing(text):
    """A row without the punctuation that ends a sentence of display math (blanked)."""
    stripped = text.rstrip()
    while stripped and stripped[-1] in ".,;":
        stripped = stripped[:-1].rstrip()
    return stripped + " " * (len(text) - len(stripped))


@dataclass(frozen=True)
class Token:
    kind: str     # number, word, op, script (superscript characters), low (subscript characters), end
    value: str
    position: int


def tokens(row):
    """The tokens of a row: LaTeX commands read as their letters or operators, spacing dropped; an unknown command
    is an error naming its column."""
    out, k, text = [], 0, row.text
    while k < len(text):
        if text[k].isspace():
            k += 1
            continue
        match = TOKEN.match(text, k)
        if not match:
            raise WrittenError(row, k, f"unexpected character {text[k]!r}")
        kind, value = match.lastgroup, match.group()
        if kind == "command":
            if value in SPACING:
                k = match.end()
                continue
            if value in WRAPPERS:
                kind = "wrapper"
            elif value in COMMANDS:
                value = COMMANDS[value]
                kind = "word" if value.isalpha() and value != "ᵀ" else "op"
            elif value == r"\frac" or value == r"\dfrac" or value == r"\tfrac":
                kind, value = "frac", r"\frac"
            elif value in (r"\mathsf", r"\sf"):
                kind = "wrapper"
            else:
                raise WrittenError(row, k, f"unknown LaTeX command {value}")
        elif kind == "op" and value in "δσφλΘθℓ":
            kind = "word"
        out.append(Token(kind, value, k))
        k = match.end()
    out.append(Token("end", "", len(text)))
    return out


# A layer index: an integer, L, or l, each with an offset: ("layer", base, offset), base "", "L" or "l"
LAYER = re.compile(r"\s*([lL]?)\s*(?:([+-])\s*(\d+))?\s*$|\s*(\d+)\s*$")


def layer_index(text):
    """("", k), ("L", k) or ("l", k) for "2", "L-1", "l+1"; None for anything else."""
    text = text.replace("−", "-")
    match = re.fullmatch(r"\s*(\d+)\s*", text)
    if match:
        return ("", int(match.group(1)))
    match = re.fullmatch(r"\s*([lL])\s*(?:([+-])\s*(\d+))?\s*", text)
    if match:
        offset = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
        return (match.group(1), offset)
    return None


FUNCTIONS = {"tr": "tr", "trace": "tr", "diag": "diag", "sum": "sum", "exp": "exp", "log": "log", "tanh": "tanh",
             "relu": "relu", "ReLU": "relu", "sigmoid": "sigmoid", "softmax": "softmax", "det": "det", "inv": "inv",
             "softplus": "softplus", "lrelu": "leaky_relu", "leaky_relu": "leaky_relu",
             "σ": "σ", "sigma": "σ", "φ": "σ", "phi": "σ", "f": "σ", "g": "σ"}   # σ, f, g, φ: the layer's own
HADAMARD = ("⊙", "∘", ".*")
DIVIDE = ("⊘", "./")
PRODUCT = ("*", "·", "×")
STARTS = ("(", "{", "[", "∂", "∇", "𝟏", "‖", "|")   # ops that begin an operand written right after another


class Reader:
    """Recursive descent over one row: statement := [= | ⇒] side ((= | ⇒) side)*; side := sum; sum := hadamard
    ((+|−) hadamard)*; hadamard := product ((⊙|⊘) product)*; product := unary ((*|·|/| ) unary)*; unary := −unary |
    postfix; postfix := primary (ᵀ | ' | ^… | _…)*. Juxtaposition is the (matrix) product, binding tighter than ⊙.
    `names(word)` gives a word's symbol base (or None); functions are FUNCTIONS."""

    def __init__(self, row, names):
        self.row, self.names = row, names
        self.toks, self.k, self.depth = tokens(row), 0, 0

    def error(self, tok, message):
        return WrittenError(self.row, tok.position, message)

    def peek(self, ahead=0):
        return self.toks[min(self.k + ahead, len(self.toks) - 1)]

    def take(self, value=None):
        tok = self.peek()
        if value is not None and tok.value != value:
            raise self.error(tok, f"expected {value!r}, found {tok.value or 'the end'!r}")
        self.k += 1
        return tok

    def split(self, tok, n):
        """Keep the first n characters of the word `tok` as the next token (LaTeX's ^T X, W^{(1)}X: one character
        is the script's, the rest a word of its own)."""
        rest = Token(tok.kind, tok.value[n:], tok.position + n)
        self.toks[self.k] = Token(tok.kind, tok.value[:n], tok.position)
        if rest.value:
            self.toks.insert(self.k + 1, rest)

    def statement(self):
        """[(relation, side)]: the relation ("=", "⇒" or None for the first side) before each side."""
        out, relation = [], None
        if self.peek().value in ("=", "⇒", "⟹", "->", "=>"):
            relation = "⇒" if self.take().value != "=" else "="
        while True:
            if self.peek().value == "≈":
                raise self.error(self.peek(), "≈ is not an equality that can be checked: write =")
            out.append((relation, self.sum()))
            tok = self.peek()
            if tok.kind == "end":
                return out
            if tok.value in ("=", "⇒", "⟹", "->", "=>"):
                relation = "⇒" if self.take().value != "=" else "="
                continue
            if tok.value in ("<", ">", "≈"):
                raise self.error(tok, f"{tok.value!r} is not an equality: each row states = or ⇒")
            raise self.error(tok, f"expected an operator, = or the end, found {tok.value!r}")

    def sum(self):
        left = self.hadamard()
        while self.peek().value in ("+", "-", "−"):
            tok = self.take()
            left = ("add" if tok.value == "+" else "sub", tok.position, left, self.hadamard())
        return left

    def hadamard(self):
        left = self.product()
        while self.peek().value in HADAMARD + DIVIDE or (self.peek().value == "o" and not self.names("o")):
            tok = self.take()
            left = ("hdiv" if tok.value in DIVIDE else "had", tok.position, left, self.product())
        return left

    def starts_operand(self, tok):
        return tok.kind in ("number", "word", "wrapper", "frac") or tok.value in STARTS and tok.value != "|" \
            or (tok.value == "|" and False)

    def product(self):
        left = self.unary()
        while True:
            tok = self.peek()
            if tok.value in PRODUCT or tok.value == "/":
                self.take()
                right = self.unary()
                if tok.value == "/" and _partial(left) and _partial(right):
                    left = ("grad", tok.position, left, right)
                else:
                    left = ("div" if tok.value == "/" else "mul", tok.position, left, right)
            elif self.starts_operand(tok) and not (tok.kind == "word" and tok.value == "o" and not self.names("o")):
                left = ("mul", tok.position, left, self.factor())
            else:
                return left

    def unary(self):
        if self.peek().value in ("-", "−", "+"):
            tok = self.take()
            operand = self.unary()
            return operand if tok.value == "+" else ("neg", tok.position, operand)
        return self.factor()

    def factor(self):
        """An operand; ∂L/∂W or dL/dW written inline (a / between two differentials) is one derivative."""
        out = self.postfix()
        if _partial(out) and self.peek().value == "/":
            save, toks = self.k, list(self.toks)
            slash = self.take()
            right = self.postfix()
            if _partial(right):
                return ("grad", slash.position, out, right)
            self.k, self.toks = save, toks
        return out

    def postfix(self):
        out = self.primary()
        while True:
            tok = self.peek()
            if tok.value in ("'", "′", ".T", "ᵀ"):
                self.take()
                out = ("T", tok.position, out)
            elif tok.kind == "script":
                self.take()
                out = self.script(out, tok, tok.value.translate(SUPERSCRIPT))
            elif tok.value in ("^", "**"):   # ** as Python writes a power
                self.take()
                out = self.script(out, tok, self.group_text())
            elif tok.value == "_" and out[0] in ("ones", "norm"):
                self.take()
                text = self.group_text()
                out = out if out[0] == "norm" else ("ones", out[1], text.strip("() "), True)
            elif (tok.value == "_" or tok.kind == "low") and out[0] == "name" and out[3] is None:
                self.take()   # N_{2}, W_1, W₁: a layer as a subscript
                text = tok.value.translate(SUBSCRIPT) if tok.kind == "low" else self.group_text()
                index = layer_index(text.strip("() "))
                if index is None:
                    raise self.error(tok, f"subscript {text!r}: a layer (an integer, L or l, ± an integer)")
                out = ("name", out[1], out[2], index)
            else:
                return out

    def group_text(self):
        """The text of a script: {…} up to its closing brace, or one character (^T X: T is the script)."""
        tok = self.peek()
        if tok.value == "{":
            start, depth = self.take(), 1
            while depth:
                tok = self.take()
                if tok.kind == "end":
                    raise self.error(start, "unclosed {")
                depth += {"{": 1, "}": -1}.get(tok.value, 0)
            return self.row.text[start.position + 1:tok.position]
        if tok.kind in ("word", "number") and len(tok.value) > 1:
            self.split(tok, 1)
        tok = self.take()
        if tok.value in ("∘", "⊙") and self.peek().kind == "number":   # X^∘2, the entrywise power
            return "∘" + self.take().value
        if tok.kind == "end":
            raise self.error(tok, "a script (^ or _) with nothing after it")
        if tok.value in ("(", "["):   # ^(2), Ng's ^[2]
            close = {"(": ")", "[": "]"}[tok.value]
            start = tok.position
            while self.peek().value != close:
                if self.take().kind == "end":
                    raise self.error(tok, f"unclosed {tok.value}")
            end = self.take()
            return self.row.text[start:end.position + 1]
        return self.row.text[tok.position:tok.position + len(tok.value)] if tok.kind != "op" or tok.value != "ᵀ" \
            else "T"

    def script(self, out, tok, text):
        """out with a superscript: a layer (2), [2], (l+1), (L−1); ᵀ, T, \\top; a power 2; −1 for the inverse; or a
        layer then ᵀ, as W^{(2)\\top}."""
        text = text.replace(r"\top", "T").replace(r"\intercal", "T").replace(r"\mathsf{T}", "T") \
                   .replace("ᵀ", "T").replace(r"\prime", "'").replace("−", "-").strip()
        layer = re.match(r"[(\[]([^()\[\]]*)[)\]]", text)
        if layer:
            index = layer_index(layer.group(1))
            if index is None or out[0] != "name" or out[3] is not None:
                where = "a layer already given" if out[0] == "name" else "an expression"
                raise self.error(tok, f"layer index {layer.group(1)!r} on {where}: a layer is an integer, L or l, "
                                      f"with ± an integer, on a symbol")
            out = ("name", out[1], out[2], index)
            text = text[layer.end():].strip()
        if text in ("", None):
            return out
        if text in ("T", "'"):
            return ("T", tok.position, out)
        if text == "-1":
            return ("inv", tok.position, out)
        power = re.fullmatch(r"(?:\\circ|∘)\s*(\d+)", text)
        if power:   # X^{∘2}: the entrywise power
            return ("hpow", tok.position, out, int(power.group(1)))
        if text.isdigit():
            return ("pow", tok.position, out, int(text))
        raise self.error(tok, f"superscript {text!r}: a layer (2), a transpose ᵀ, a power or −1")

    def group(self, tok):
        """The sum inside ( ), { } or [ ] (an Iverson bracket [Z > 0] in square brackets), at most 100 deep."""
        close = {"(": ")", "{": "}", "[": "]"}[tok.value]
        self.depth += 1
        if self.depth > 100:
            raise self.error(tok, "nested more than 100 deep")
        inner = self.sum()
        if close == "]" and self.peek().value == ">":
            self.take()
            zero = self.take()
            if zero.value != "0":
                raise self.error(zero, "an Iverson bracket is [Z > 0]")
            inner = ("step", tok.position, inner)
        self.depth -= 1
        end = self.peek()
        if end.value != close:
            raise self.error(end, f"expected {close!r} to close the {tok.value!r} at column {tok.position + 1}, "
                                  f"found {end.value or 'the end'!r}")
        self.take()
        return inner

    def primary(self):
        tok = self.peek()
        if tok.kind == "end":
            raise self.error(tok, "expected an operand, found the end")
        if tok.kind == "number":
            self.take()
            return ("num", tok.position, tok.value)
        if tok.value in ("(", "{", "["):
            self.take()
            return self.group(tok)
        if tok.value in ("‖", "|"):
            self.take()
            inner = self.sum()
            self.take(tok.value)
            if self.peek().value == "_":   # ‖E‖_F, ‖E‖_2
                self.take()
                self.group_text()
            return ("norm" if tok.value == "‖" else "bars", tok.position, inner)   # |X|: det X, |x|: abs x
        if tok.value == "𝟏":
            self.take()
            return ("ones", tok.position, None, True)
        if tok.value == "∂":
            self.take()
            return ("partial", tok.position, self.postfix())
        if tok.value == "∇":   # ∇_{W} L, ∇_W J: the gradient of the loss
            self.take()
            self.take("_")
            nxt = self.peek()
            if nxt.kind == "word" and len(nxt.value) > 1 and nxt.value[1:].isalpha():
                self.split(nxt, 1)
            wrt = self.group(self.take()) if nxt.value == "{" else self.postfix()
            loss = self.postfix() if self.peek().kind == "word" and self.names(self.peek().value) in ("L", "f") \
                else ("name", tok.position, "L", None)
            return ("grad", tok.position, ("partial", tok.position, loss), ("partial", tok.position, wrt))
        if tok.value == "Σ":
            raise self.error(tok, "index notation (Σ over i, j) is not read: write the matrix form")
        if tok.kind == "frac":
            self.take()
            top, bottom = self.braced(), self.braced()
            if _partial(top) and _partial(bottom):
                return ("grad", tok.position, top, bottom)
            return ("div", tok.position, top, bottom)
        if tok.kind == "wrapper":
            return self.wrapped(self.take())
        if tok.kind == "word":
            return self.word(tok)
        raise self.error(tok, f"expected a number, a symbol, a function or '(', found {tok.value!r}")

    def braced(self):
        tok = self.peek()
        if tok.value != "{":
            return self.postfix()   # \frac12
        self.take()
        return self.group(tok)

    def wrapped(self, tok):
        r"""\mathbf{1} (ones), \mathrm{d} (a differential), \operatorname{tr} (a function), or the wrapped symbol."""
        start = self.take("{")
        depth, parts = 1, []
        while True:
            inner = self.peek()
            if inner.kind == "end":
                raise self.error(start, "unclosed {")
            depth += {"{": 1, "}": -1}.get(inner.value, 0)
            if depth == 0:
                break
            parts.append(self.take())
        self.take("}")
        text = "".join(p.value for p in parts)
        if text == "1":
            return ("ones", tok.position, None, True)
        if text == "0":   # \mathbf{0}: the zero matrix of the shape around it
            return ("mul", tok.position, ("num", tok.position, "0"), ("ones", tok.position, None, True))
        if text == "d":
            return ("d", tok.position, self.postfix())
        if text in FUNCTIONS and self.names(text) is None:
            return self.call(Token("word", text, parts[0].position))
        self.toks[self.k:self.k] = parts   # \mathbf{W}: the symbol itself
        return self.postfix()

    def word(self, tok):
        """A function call, a symbol (with its layer digits: W1, delta2), d + a symbol (dW1: a differential), or
        letters each a symbol (LaTeX's WX is W X)."""
        word = tok.value
        if word in FUNCTIONS and self.names(word) is None:
            return self.call(self.take())
        base, digits = re.fullmatch(r"([A-Za-zδσφλΘθℓ]+?)(\d*)", word).groups() if re.fullmatch(
            r"[A-Za-zδσφλΘθℓ]+\d*", word) else (word, "")
        if self.names(word) is not None:
            self.take()
            return ("name", tok.position, self.names(word), None)
        if digits and self.names(base) is not None:
            self.take()
            return ("name", tok.position, self.names(base), ("", int(digits)))
        if word.startswith("d") and len(word) > 1 and (self.names(word[1:]) is not None or
                                                       self.names(base[1:]) is not None):
            self.split(tok, 1)
            self.take()
            return ("d", tok.position, self.postfix())
        if word == "d":
            self.take()
            return ("d", tok.position, self.postfix())
        if word == "I":   # the identity, of the size around it
            self.take()
            return ("eye", tok.position)
        if len(word) > 1 and self.names(word[0]) is not None or word[:1] == "d" and len(word) > 1:
            self.split(tok, 1)
            return self.word(self.peek())
        raise self.error(tok, f"unknown symbol {word!r}" + self.names.known())

    def call(self, tok):
        """f(x), f'(x), σ'(Z), f^{\\prime}(x), \\operatorname{tr}X; the argument in ( ), { } or the next operand."""
        name, prime = FUNCTIONS[tok.value], False
        if self.peek().value in ("'", "′"):
            self.take()
            prime = True
        elif self.peek().value == "^":
            save = self.k
            self.take()
            if self.group_text().replace(r"\prime", "'").strip() == "'":
                prime = True
            else:
                self.k = save
        if self.peek().value == "_":   # σ_l: the layer is read off the argument
            self.take()
            self.group_text()
        nxt = self.peek()
        arg = self.group(self.take()) if nxt.value in ("(", "{", "[") else self.postfix()
        return ("call", tok.position, name, prime, arg)


def _partial(node):
    """Whether a node is ∂X or dX of a symbol (a side of ∂L/∂W)."""
    return node[0] in ("partial", "d") and node[2][0] == "name"


def read(row, names):
    """[(relation, tree)] of one row; `names` gives each word's symbol base (or None) and .known() for messages."""
    return Reader(row, names).statement()
