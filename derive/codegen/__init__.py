"""Generated functions: a structured Program, printed to source, modules and listings, and compiled."""
