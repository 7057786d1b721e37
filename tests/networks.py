"""The three-way numerical check used by the network tests: derived vs recursion vs finite differences."""
import derive
from verify import Spec, central_difference, data, recursion, relative_error


def tables():
    """(hidden activations, {loss: allowed outputs or None}) from derive's registries, for verify.strategies."""
    hidden = [name for name, act in derive.ACTIVATIONS.items() if act.elementwise]
    return hidden, {name: entry.outputs for name, entry in derive.LOSSES.items()}


def errors(result, rng, width=3, samples=3):
    """{parameter: (error vs the recursion, error vs central differences)} at random inputs."""
    net = result.network
    scalars = data.scalars(net, 0.3)
    spec = Spec.of(net, weight_decay=next(iter(scalars.values()), None))
    X, Y, params = data.draw(net, rng, data.dimensions(net, width, samples), spec=spec)
    derived = result.numpy()(X=X, Y=Y, **params, **scalars)
    reference = recursion.gradients(spec, X, Y, params)
    assert set(derived) == set(reference)
    out = {}
    for name, G in reference.items():
        fd = central_difference(lambda **v: recursion.loss(spec, X, Y, v), params, name, eps=1e-5)
        out[name] = (relative_error(derived[name], G), relative_error(derived[name], fd))
    return out
