"""NumPy code for the engine's expressions: a NumPyPrinter subclass and a lambdify that uses it."""
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from .functions import ELT, body_of


class MatrixNumPyPrinter(NumPyPrinter):
    """Prints matrix products as @, ⊙ as *, and every elementwise function on whole arrays."""

    def _print_MatMul(self, expr):
        coeff, mats = expr.as_coeff_matrices()
        product = " @ ".join(self.parenthesize(m, PRECEDENCE["Mul"], strict=False) for m in mats)
        if coeff == 1:
            return product
        return f"{self.parenthesize(coeff, PRECEDENCE['Mul'])} * ({product})"

    def _print_MatAdd(self, expr):
        return " + ".join(self.parenthesize(t, PRECEDENCE["Add"]) for t in expr.args)

    def _print_HadamardProduct(self, expr):
        return " * ".join(self.parenthesize(a, PRECEDENCE["Mul"], strict=False) for a in expr.args)

    def _print_HadamardPower(self, expr):
        return f"{self.parenthesize(expr.base, PRECEDENCE['Pow'], strict=False)} ** {self._print(expr.exp)}"

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, PRECEDENCE['Atom'], strict=True)}.T"

    def _print_Inverse(self, expr):
        return f"{self._module_format('numpy.linalg.inv')}({self._print(expr.arg)})"

    def _print_Determinant(self, expr):
        return f"{self._module_format('numpy.linalg.det')}({self._print(expr.arg)})"

    def _print_Trace(self, expr):
        return f"{self._module_format('numpy.trace')}({self._print(expr.arg)})"

    def _print_Identity(self, expr):
        return f"{self._module_format('numpy.eye')}({self._print(expr.rows)})"

    def _print_OneMatrix(self, expr):
        return f"{self._module_format('numpy.ones')}(({self._print(expr.rows)}, {self._print(expr.cols)}))"

    def _print_ZeroMatrix(self, expr):
        return f"{self._module_format('numpy.zeros')}(({self._print(expr.rows)}, {self._print(expr.cols)}))"

    def _print_ElementwiseApplyFunction(self, expr):
        arg = sp.Symbol(f"({self._print(expr.expr)})")
        return self._print(body_of(expr.function).xreplace({ELT: arg}))

    def _print_sigmoid(self, expr):
        # σ(x) = exp(−log(1 + e^{−x})), which never overflows
        x = self._print(expr.args[0])
        return f"{self._module_format('numpy.exp')}(-{self._module_format('numpy.logaddexp')}(0, -{x}))"

    def _print_softplus(self, expr):
        return f"{self._module_format('numpy.logaddexp')}(0, {self._print(expr.args[0])})"

    def _print_relu(self, expr):
        return f"{self._module_format('numpy.maximum')}({self._print(expr.args[0])}, 0)"

    def _print_Heaviside(self, expr):
        x = self._print(expr.args[0])
        h0 = self._print(expr.args[1]) if len(expr.args) > 1 else "0.5"
        return f"{self._module_format('numpy.heaviside')}({x}, {h0})"


def _dimensions(args):
    """{dimension symbol: (argument index, axis)} for the symbolic sizes of the arguments."""
    where = {}
    for k, a in enumerate(args):
        for axis, size in enumerate(getattr(a, "shape", ())):
            if isinstance(size, sp.Symbol):
                where.setdefault(size, (k, axis))
    return where


def lambdify(args, expr):
    """A NumPy function of `args` computing `expr`, like sympy.lambdify; symbolic sizes are read off the inputs."""
    args = list(args) if isinstance(args, (list, tuple)) else [args]
    dims = _dimensions(args)
    missing = expr.free_symbols - set(args) - set(dims)
    missing = {s for s in missing if not any(s in a.free_symbols for a in args if a.is_Matrix)}
    if missing:
        raise ValueError(f"expression has free symbols that are not arguments: {sorted(map(str, missing))}")
    order = sorted(dims, key=str)
    inner = sp.lambdify(args + order, expr, modules="numpy", printer=MatrixNumPyPrinter(
        {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": False}))

    def f(*values):
        if len(values) != len(args):
            raise TypeError(f"expected {len(args)} arguments ({', '.join(map(str, args))}), got {len(values)}")
        sizes = [values[dims[n][0]].shape[dims[n][1]] for n in order]
        return inner(*values, *sizes)

    f.__doc__ = f"{', '.join(map(str, args))} -> {expr}"
    f.source = inner.__doc__
    return f
