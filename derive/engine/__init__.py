"""The reverse sweep of matrix differentials, and its results for expressions (Derivation)."""
