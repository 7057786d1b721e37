"""Networks as named definitions, their backpropagation (Backprop), and equivalent forms of its results."""
from . import views_attention  # noqa: F401,E402  (the views of self-attention and layer norm, in textbook.VIEWS)
