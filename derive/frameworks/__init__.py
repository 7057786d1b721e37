"""Derived programs inside the training frameworks: a network as a PyTorch module or a JAX loss, an expression's
derivation as a PyTorch or JAX function, each with the derived program as its backward pass. Each module imports
its framework, which is an optional dependency: `pip install 'matrix-backprop[torch]'` or `[jax]`."""
from ..errors import InvalidArgument, InvalidType


def bind_network(backprop, scalars):
    """(parameter names, input names, the scalar arguments' values, a function (params, X, Y) -> keyword arrays of
    the generated programs): X is one array, or a sequence of them for a network of several inputs (X1 … XT, then the
    masks of its dropout layers)."""
    net = backprop.network
    params, inputs = [P.name for P in net.parameters], [x.name for x in (*net.inputs, *net.given)]
    arguments, _, _ = backprop.plan("loss")
    names = [str(a) for a in arguments if str(a) not in {*params, *inputs, "Y"}]
    scalars = dict(scalars or {})
    if sorted(scalars) != sorted(names):
        raise InvalidArgument(f"the network's scalar arguments are {names or 'none'}: give each a value (scalars="
                              f"{{name: value}}), got {sorted(scalars) or 'none'}")

    def keywords(values, X, Y):
        if sorted(values) != sorted(params):
            raise InvalidType(f"the parameters are {', '.join(params)}; missing {sorted(set(params) - set(values))}, "
                              f"unexpected {sorted(set(values) - set(params))}")
        xs = (X,) if len(inputs) == 1 else tuple(X) if isinstance(X, (list, tuple)) else None
        if xs is None or len(xs) != len(inputs):
            raise InvalidType(f"X: the network reads {len(inputs)} inputs ({', '.join(inputs)}): give them as a sequence")
        return {**dict(zip(inputs, xs)), "Y": Y, **values, **scalars}

    return params, inputs, keywords


def derivation_run(derivation):
    """(argument names in order, the variable's name, run): run(values, gradients) -> (f, {variable: ∂f/∂X} or None),
    the value program alone where no gradient is wanted, else one pass of value_and_gradient."""
    arguments, _, _ = derivation.plan("gradient")
    names, wrt = [str(a) for a in arguments], str(derivation.wrt)
    value, both = derivation.numpy("value"), derivation.numpy("value_and_gradient")
    key = derivation._gradient_key()

    def run(values, gradients):
        if not gradients:
            return value(**values), None
        out = both(**values)
        return out["f"], {wrt: out[key]}

    return names, wrt, run


def positional(names, args, kwargs, what):
    """The arrays of `names` in order, from positional and keyword arguments; a missing or unexpected one named."""
    if len(args) > len(names):
        raise InvalidType(f"{what} takes {len(names)} arguments ({', '.join(names)}), got {len(args)}")
    values = dict(zip(names, args))
    clash = set(values) & set(kwargs)
    missing, extra = set(names) - set(values) - set(kwargs), set(kwargs) - set(names)
    if clash or missing or extra:
        raise InvalidType(f"{what} takes {', '.join(names)}; given twice {sorted(clash)}, missing {sorted(missing)}, "
                          f"unexpected {sorted(extra)}")
    values.update(kwargs)
    return [values[n] for n in names]
