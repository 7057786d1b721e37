"""The error of a derivation that cannot be read or has no meaning: it names the line and column."""


class WrittenError(ValueError):
    """A derivation that cannot be read (unparsable LaTeX, an unknown symbol): line, column and what is wrong."""

    def __init__(self, row, position, message):
        self.line, self.column, self.reason = row.line, position + 1, message
        super().__init__(f"line {row.line}, column {position + 1}: {message}\n  {row.text.rstrip()}\n"
                         f"  {' ' * position}^")
