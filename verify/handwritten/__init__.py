"""Checking a derivation written by hand, line by line: reading it (syntax), giving its names their meaning at
random points of a network or an expression (meaning), and comparing each equality and result (check)."""
