"""Expressions, scalar functions, the operator table with its rules, the registries of activations and losses, and the parser of typed text."""
