"""Errors raised by the derivation engine."""


class DeriveError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class UnsupportedOperation(DeriveError, NotImplementedError):
    """An operator the engine has no differential rule for."""

    def __init__(self, operator, expr, reason="no differential rule", action="differentiate"):
        self.operator = operator
        self.expr = expr
        super().__init__(f"cannot {action} {operator}: {reason}, in sub-expression {expr}")
