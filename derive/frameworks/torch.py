"""A network as a torch.nn.Module, and a derivation as a PyTorch function, whose backward is the derived program:
one generated pass gives the value and every gradient, and the backward scales them by the incoming gradient."""
from typing import Any

try:
    import torch
except ImportError as e:   # an optional dependency
    raise ImportError("derive's PyTorch module needs PyTorch: pip install 'matrix-backprop[torch]'") from e

from ..errors import InvalidArgument
from . import bind_network, derivation_run, positional


class _Derived(torch.autograd.Function):
    """f(arrays) whose backward is the derived gradient: ∂(g f)/∂x = g ∂f/∂x for each x the program differentiates."""

    @staticmethod
    def forward(ctx, run, names, differentiable, *arrays):
        wanted = ctx.needs_input_grad[3:]
        refused = [n for n, w in zip(names, wanted) if w and n not in differentiable]
        if refused:
            verb = "requires" if len(refused) == 1 else "require"
            raise InvalidArgument(f"{', '.join(refused)} {verb} grad, but the derived program gives the gradient of "
                                  f"{', '.join(differentiable)} only: detach {', '.join(refused)}")
        value, gradients = run(dict(zip(names, arrays)), any(wanted))
        ctx.gradients = [gradients[n] if gradients is not None and w else None for n, w in zip(names, wanted)]
        return value

    @staticmethod
    def backward(ctx, g):
        if torch.is_grad_enabled():   # create_graph: a second derivative would need the program's own derivative
            raise RuntimeError("a second derivative through the derived program is not available (its backward is "
                               "the derived gradient, which has no backward of its own): use backprop(net).numpy("
                               "'hvp') for Hessian-vector products")
        # the program's gradients are its own fresh arrays: scaled in place
        return (None, None, None, *(None if G is None else G.mul_(g) for G in ctx.gradients))


class Module(torch.nn.Module):
    """A derived network: its parameters as nn.Parameters under their names (W1, b1, …), forward(X, Y) the loss with
    the derived backprop as its backward, predict(X) the output. X and Y are laid out as the network's layout says."""

    def __init__(self, backprop: Any, sizes: dict | None = None, seed: int = 0, dtype: torch.dtype | None = None,
                 device: Any = None, scalars: dict | None = None):
        super().__init__()
        self.params, inputs, self._keywords = bind_network(backprop, scalars)
        dtype = dtype or torch.get_default_dtype()
        for name, value in backprop.network.initial_parameters(seed, sizes).items():
            self.register_parameter(name, torch.nn.Parameter(torch.as_tensor(value, dtype=dtype, device=device)))
        self._both, self._loss = backprop.numpy("loss_and_gradients"), backprop.numpy("loss")
        self._forward, self._output = backprop.numpy("forward"), str(backprop.network.result)
        self._names = [*inputs, "Y", *self.params]
        self._description = backprop.network.describe()

    def _run(self, values, gradients):
        if not gradients:
            return self._loss(**values), None
        out = self._both(**values)
        return out["loss"], out

    def forward(self, X: Any, Y: torch.Tensor) -> torch.Tensor:
        """The loss L(X, Y); its backward gives every parameter's gradient from the derived program."""
        keywords = self._keywords({n: getattr(self, n) for n in self.params}, X, Y)
        fixed = {k: v for k, v in keywords.items() if k not in self._names}
        run = self._run if not fixed else (lambda values, grads: self._run({**values, **fixed}, grads))
        return _Derived.apply(run, self._names, self.params, *(keywords[n] for n in self._names))

    @torch.no_grad()
    def predict(self, X: Any) -> torch.Tensor:
        """The network's output A^(L) for the inputs X (no gradient)."""
        keywords = self._keywords({n: getattr(self, n) for n in self.params}, X, None)
        keywords.pop("Y")
        return self._forward(**keywords)[self._output]

    def extra_repr(self):
        return self._description


def network_module(backprop, **options) -> Module:
    """backprop.network as a Module (see Module for the options)."""
    return Module(backprop, **options)


def derivation_function(derivation):
    """f(*arrays, **arrays) -> the value f, with ∂f/∂X from the derived program as its backward."""
    names, wrt, run = derivation_run(derivation)
    def f(*args, **kwargs):
        return _Derived.apply(run, names, (wrt,), *positional(names, args, kwargs, "f"))

    f.__doc__ = f"{derivation.text().splitlines()[0]}; its backward is ∂f/∂{wrt} as derived (arguments {', '.join(names)})."
    f.arguments = tuple(names)
    return f
