"""The error of a derivation that cannot be read or has no meaning: it names the line and column."""


class WrittenError(ValueError):
    """A derivation that cannot be read (unparsable LaTeX, an unknown symbol): line, column and what is wrong."""

    def __init__(self, row, position, message):
        self.line, self.column, self.reason = row.line, position + 1, message
        super().__init__(f"line {row.line}, column {position + 1}: {message}\n  {row.text.rstrip()}\n"
                         f"  {' ' * position}^")


class ShapeMismatch(WrittenError):
    """A row whose shapes do not fit (a product that does not conform, a sum of two shapes): the row is wrong, the
    derivation can still be read."""


class NoSuchLayer(WrittenError):
    """A layer the network does not have (at one value of a generic l, the row is checked at the others)."""
