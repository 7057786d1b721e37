"""The errors the toolkit raises on purpose: one hierarchy under DeriveError, each naming what was wrong."""


class DeriveError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class InvalidArgument(DeriveError, ValueError):
    """A value the toolkit cannot take (a size, a name, a choice, a definition), named in the message."""


class InvalidType(DeriveError, TypeError):
    """An argument of the wrong type (text where an expression is needed, a missing keyword), named in the message."""


class ShapeError(InvalidArgument):
    """Shapes that do not fit: the operand or argument and both shapes are named."""


class ParseError(InvalidArgument):
    """A syntax or shape error in typed text, shown with the text and a caret under the position."""

    def __init__(self, text, position, message):
        self.position = position
        super().__init__(f"{message}\n  {text}\n  {' ' * position}^")


class UsageError(DeriveError):
    """A command-line usage error (exit code 2)."""


class NotElementwise(DeriveError):
    """A scalar image that has no elementwise matrix preimage (internal to the Hadamard simplifier)."""


class DocumentError(DeriveError, RuntimeError):
    """A document that could not be made (pdflatex failed on it), with the end of TeX's log."""


class UnsupportedOperation(DeriveError, NotImplementedError):
    """An operator the engine has no rule for (or no code for), named with the sub-expression."""

    def __init__(self, operator, expr, reason="no differential rule", action="differentiate"):
        self.operator = operator
        self.expr = expr
        super().__init__(f"cannot {action} {operator}: {reason}, in sub-expression {expr}")
