"""A network as a JAX loss, and a derivation as a JAX function, each a jax.custom_vjp whose backward is the derived
program: under jax.grad one generated pass gives the value and every gradient; it works under jax.jit."""
try:
    import jax
except ImportError as e:   # an optional dependency
    raise ImportError("derive's JAX functions need JAX: pip install 'matrix-backprop[jax]'") from e

from ..errors import InvalidArgument
from . import bind_network, derivation_run, positional


def _refuse(primals, names, differentiable):
    """Refuse, by name, a differentiated argument the derived program gives no gradient for (JAX would take None as
    a zero cotangent: a silently wrong gradient)."""
    refused = [n for n, p in zip(names, primals) if n not in differentiable
               and any(leaf.perturbed for leaf in jax.tree_util.tree_leaves(p, is_leaf=_is_primal))]
    if refused:
        raise InvalidArgument(f"{', '.join(refused)} is differentiated, but the derived program gives the gradient of "
                              f"{', '.join(differentiable)} only")


def _is_primal(x):
    return hasattr(x, "perturbed")


def _values(tree):
    return _arrays(jax.tree_util.tree_map(lambda p: p.value, tree, is_leaf=_is_primal))


def _arrays(tree):
    """Every leaf a JAX array, as a JAX function takes NumPy arrays and numbers too."""
    return jax.tree_util.tree_map(jax.numpy.asarray, tree)


def network_loss(backprop, scalars=None):
    """loss(params, X, Y) with params {name: array}: the network's loss, with the derived backprop as its VJP."""
    params, _, keywords = bind_network(backprop, scalars)
    both, value = backprop.numpy("loss_and_gradients"), backprop.numpy("loss")

    @jax.custom_vjp
    def loss(params, X, Y):
        return value(**keywords(*_arrays((params, X, Y))))

    def forward(p, X, Y):
        _refuse((X, Y), ("X", "Y"), ("params",))
        out = both(**keywords(_values(p), _values(X), _values(Y)))
        return out["loss"], {n: out[n] for n in params}

    def backward(gradients, g):
        return {n: g * G for n, G in gradients.items()}, None, None

    loss.defvjp(forward, backward, symbolic_zeros=True)
    loss.__doc__ = f"The loss of the {backprop.network.describe()}; parameters {', '.join(params)}."
    return loss


def derivation_function(derivation):
    """f(*arrays) (positional, in the order of `f.arguments`, or by keyword) -> the value, with ∂f/∂X as its VJP."""
    names, wrt, run = derivation_run(derivation)

    @jax.custom_vjp
    def f(*arrays):
        return run(dict(zip(names, _arrays(arrays))), False)[0]

    def forward(*primals):
        _refuse(primals, names, (wrt,))
        value, gradient = run(dict(zip(names, _values(primals))), True)
        return value, gradient[wrt]

    def backward(gradient, g):
        return tuple(g * gradient if n == wrt else None for n in names)

    f.defvjp(forward, backward, symbolic_zeros=True)

    def function(*args, **kwargs):
        return f(*positional(names, args, kwargs, "f"))

    function.__doc__ = f"{derivation.text().splitlines()[0]}; its VJP is ∂f/∂{wrt} as derived (arguments {', '.join(names)})."
    function.arguments = tuple(names)
    return function
