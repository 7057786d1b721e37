"""Networks as named definitions, their backpropagation (Backprop), and equivalent forms of its results."""
