"""Random concrete inputs for symbolic networks, and the three-way numerical check used by the network tests."""
import numpy as np
import sympy as sp

from verify import Spec, central_difference, recursion, relative_error


def concrete(net, rng, width=3, samples=3):
    """Random X, Y, parameters for `net` (symbolic sizes set to `width`, m to `samples`), and λ's value."""
    dims = {s: width for n in net.sizes for s in sp.sympify(n).free_symbols}
    dims.update({s: samples for s in sp.sympify(net.m).free_symbols})

    def shape(M):
        return tuple(int(sp.sympify(k).subs(dims)) for k in M.shape)

    params = {P.name: rng.normal(scale=0.8, size=shape(P)) for P in net.parameters}
    X = rng.normal(size=shape(net.X))
    if net.loss_name == "softmax_ce" and net.output.activation == "softmax":
        # one-hot targets, as the derivation assumes
        Y = np.zeros(shape(net.Y))
        axis = 1 if net.layout == "AW" else 0
        hot = rng.integers(0, Y.shape[axis], size=Y.shape[1 - axis])
        if axis == 0:
            Y[hot, np.arange(Y.shape[1])] = 1
        else:
            Y[np.arange(Y.shape[0]), hot] = 1
    else:
        Y = rng.uniform(0.05, 0.95, size=shape(net.Y))
    scalars = {str(s): 0.3 for s in sp.sympify(net.weight_decay).free_symbols}
    return X, Y, params, scalars


def errors(result, rng, **sizes):
    """{parameter: (error vs the recursion, error vs central differences)} at random inputs."""
    net = result.network
    X, Y, params, scalars = concrete(net, rng, **sizes)
    derived = result.numpy()(X=X, Y=Y, **params, **scalars)
    spec = Spec.of(net, weight_decay=next(iter(scalars.values()), None))
    reference = recursion.gradients(spec, X, Y, params)
    assert set(derived) == set(reference)
    out = {}
    for name, G in reference.items():
        fd = central_difference(lambda **v: recursion.loss(spec, X, Y, v), params, name)
        out[name] = (relative_error(derived[name], G), relative_error(derived[name], fd))
    return out
