"""Printers of the engine's expressions: plain text, LaTeX in the seeds' notation, array-API code."""
