"""Derived programs inside PyTorch and JAX, and the generated code on every array library: for every example network
and every block kind, net.torch() passes torch.autograd.gradcheck and trains with torch.optim, net.jax() passes
jax.test_util.check_grads under jax.jit, and the gradient, Hessian-vector and Gauss–Newton programs give on PyTorch,
JAX (eager and jit), array_api_strict on a second device and Dask what they give on NumPy."""
import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.examples import EXAMPLES

torch = pytest.importorskip("torch", reason="PyTorch is an optional extra: pip install 'matrix-backprop[torch]'")
jax = pytest.importorskip("jax", reason="JAX is an optional extra: pip install 'matrix-backprop[jax]'")
jnp = jax.numpy
jax.config.update("jax_enable_x64", True)
from jax.test_util import check_grads  # noqa: E402


def block_networks():
    """One small network ending in or holding each block kind, beside the examples."""
    return {
        "conv1d-strided": derive.Network(3, [derive.Conv1D(4, 3, stride=2, padding=1, activation="tanh"),
                                             derive.Dense(2, "identity")], layout="AW", samples=7),
        "attention-causal": derive.Network(4, [derive.Residual([derive.LayerNorm(), derive.SelfAttention(
            2, heads=2, causal=True)]), derive.Dense(3, "softmax")], loss="softmax_ce", layout="AW", samples=5),
        "recurrent-relu": derive.Network(3, [derive.Recurrent(4, 3, activation="relu"), derive.Dense(2, "sigmoid")],
                                         loss="bce", samples=5),
        "tied-decay": derive.Network(4, [derive.Dense(3, "tanh"), derive.Dense(4, "identity", tie="W1")],
                                     weight_decay=0.1, samples=4),
        "softplus-mse-WtA": derive.mlp([3, 5, 2], activation="softplus", output="sigmoid", loss="mse", layout="WtA",
                                       samples=4),
        "lstm-batch-norm-dropout": derive.Network(2, [derive.LSTM(3, 2), derive.BatchNorm(), derive.Dropout(0.5),
                                                      derive.Dense(2, "identity")], samples=4),
        "gru-max-pool": derive.Network(2, [derive.GRU(3, 2), derive.MaxPool1D(2), derive.Dense(2, "identity")],
                                       layout="AW", samples=4),
        "embedding-rows": derive.Network(5, [derive.Embedding(5, 3), derive.Dense(2, "tanh")], layout="AW",
                                         samples=4),
        "embedding-columns": derive.Network(5, [derive.Embedding(5, 3), derive.Dense(2, "tanh")], samples=4),
    }


def networks():
    found = {name: e.derive() for name, e in EXAMPLES.items()}
    found = {name: r for name, r in found.items() if hasattr(r, "network")}
    return {**found, **{name: derive.backprop(net) for name, net in block_networks().items()}}


NETWORKS = networks()


def concrete(net, size=3, samples=4):
    """(sizes, scalars, X, Y): values for the symbolic sizes and scalars, inputs and targets fitting the loss."""
    sizes = {str(s): size for s in (*net.sizes, *[d for P in net.parameters for d in P.shape])
             if isinstance(s, sp.Symbol)}
    m = samples if isinstance(net.m, sp.Symbol) else int(net.m)
    sizes[str(net.m)] = m
    rng = np.random.default_rng(7)

    def shape(M):
        return tuple(int(sp.sympify(d).xreplace({s: sizes[str(s)] for s in sp.sympify(d).free_symbols})) for d in M.shape)

    # a one-hot input as token indices (two samples on one token: their gradients add up), a dropout's mask 0 or 1
    X = [rng.permutation([0, 0, *range(1, shape(x)[x.vocabulary_axis])])[:m] if hasattr(x, "vocabulary_axis")
         else rng.standard_normal(shape(x)) for x in net.inputs]
    X += [(rng.random(shape(M)) < 0.5).astype(float) for M in net.given]
    Y = rng.random(shape(net.Y))
    if net.loss_name == "softmax_ce":   # one-hot targets along the output axis
        axis = 1 if net.layout == "AW" else 0
        Y = (Y == Y.max(axis=axis, keepdims=True)).astype(float)
    scalars = {str(s): 0.1 for s in getattr(net.weight_decay, "free_symbols", ())}
    return sizes, scalars, X if len(X) > 1 else X[0], Y


def _tensors(X):
    return [torch.as_tensor(x) for x in X] if isinstance(X, list) else torch.as_tensor(X)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_torch_module_passes_gradcheck_and_matches_the_numpy_gradients(name):
    bp = NETWORKS[name]
    sizes, scalars, X, Y = concrete(bp.network)
    module = bp.torch(sizes=sizes, seed=1, dtype=torch.float64, scalars=scalars)
    assert [n for n, _ in module.named_parameters()] == [P.name for P in bp.network.parameters]
    values = tuple(p.detach().clone().requires_grad_() for p in module.parameters())

    def loss(*ps):
        return torch.func.functional_call(module, dict(zip(module.params, ps)), (_tensors(X), torch.as_tensor(Y)))

    assert torch.autograd.gradcheck(loss, values, eps=1e-6, atol=1e-6, rtol=1e-5)
    loss(*values).backward()
    inputs = dict(zip([x.name for x in (*bp.network.inputs, *bp.network.given)], X if isinstance(X, list) else [X]))
    expected = bp.numpy()(**inputs, Y=Y, **{n: v.detach().numpy() for n, v in zip(module.params, values)}, **scalars)
    for n, v in zip(module.params, values):
        np.testing.assert_allclose(v.grad.numpy(), expected[n], rtol=1e-12, atol=1e-14, err_msg=n)


@pytest.mark.slow   # a jax.jit compile per case
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_jax_loss_passes_check_grads_under_jit(name):
    bp = NETWORKS[name]
    sizes, scalars, X, Y = concrete(bp.network)
    loss = bp.jax(scalars=scalars)
    params = {n: jnp.asarray(v) for n, v in bp.network.initial_parameters(1, sizes).items()}
    Xj = [jnp.asarray(x) for x in X] if isinstance(X, list) else jnp.asarray(X)
    jitted = jax.jit(loss)
    check_grads(lambda p: jitted(p, Xj, jnp.asarray(Y)), (params,), order=1, modes=["rev"], eps=1e-6)
    got = jax.jit(jax.grad(loss))(params, Xj, jnp.asarray(Y))
    inputs = dict(zip([x.name for x in (*bp.network.inputs, *bp.network.given)], X if isinstance(X, list) else [X]))
    expected = bp.numpy()(**inputs, Y=Y, **{n: np.asarray(v) for n, v in params.items()}, **scalars)
    for n in params:
        np.testing.assert_allclose(np.asarray(got[n]), expected[n], rtol=1e-12, atol=1e-14, err_msg=n)


def derivations():
    n = sp.Symbol("n", integer=True, positive=True)
    A, X, B = (sp.MatrixSymbol(k, n, n) for k in "AXB")
    found = {"logdet-plus-trace": derive.derivation(sp.log(sp.det(X)) + sp.Trace(B * X), X),
             "trace-AXB": derive.derivation(sp.Trace(A * X * B), X)}
    for k, d in enumerate(EXAMPLES["seed004-linear-map"].derive()):
        found[f"seed004-linear-map-{k}"] = d
    return found


@pytest.mark.parametrize("name", sorted(derivations()))
def test_a_derivation_as_a_torch_and_a_jax_function_passes_the_frameworks_checks(name):
    d = derivations()[name]
    ft, fj = d.torch(), d.jax()
    assert ft.arguments == fj.arguments
    rng = np.random.default_rng(3)
    sizes = {}
    values = []
    for a in ft.arguments:
        M = next(s for s in d.specification()["arguments"] if str(s) == a)
        shape = tuple(sizes.setdefault(str(k), 3) if isinstance(k, sp.Symbol) else int(k) for k in M.shape)
        values.append(rng.standard_normal(shape) + (3 * np.eye(shape[0]) if shape[0] == shape[1] else 0))
    k = ft.arguments.index(str(d.wrt))

    def torch_f(x):
        return ft(*[x if i == k else torch.as_tensor(v) for i, v in enumerate(values)])

    assert torch.autograd.gradcheck(torch_f, (torch.tensor(values[k], requires_grad=True),))
    check_grads(jax.jit(lambda x: fj(*[x if i == k else v for i, v in enumerate(values)])), (jnp.asarray(values[k]),),
                order=1, modes=["rev"])


def test_what_the_program_cannot_differentiate_is_refused_by_name():
    bp = NETWORKS["seed004-two-layer"]
    sizes, _, X, Y = concrete(bp.network)
    module = bp.torch(sizes=sizes, dtype=torch.float64)
    with pytest.raises(derive.InvalidArgument, match="X requires grad.*W1, b1, W2, b2 only"):
        module(torch.tensor(X, requires_grad=True), torch.as_tensor(Y))
    loss = bp.jax()
    params = {n: jnp.asarray(v) for n, v in bp.network.initial_parameters(0, sizes).items()}
    with pytest.raises(derive.InvalidArgument, match="X is differentiated"):
        jax.grad(loss, argnums=1)(params, jnp.asarray(X), jnp.asarray(Y))
    with pytest.raises(derive.InvalidType, match="missing \\['b2'\\]"):
        loss({k: v for k, v in params.items() if k != "b2"}, X, Y)
    with pytest.raises(RuntimeError, match="second derivative through the derived program is not available"):
        out = module(torch.as_tensor(X), torch.as_tensor(Y))
        (g,) = torch.autograd.grad(out, module.W1, create_graph=True)
        g.sum().backward()
    with pytest.raises(derive.InvalidArgument, match="scalar arguments are \\['lambda'\\]"):
        NETWORKS["seed001-weight-decay"].torch(sizes=concrete(NETWORKS["seed001-weight-decay"].network)[0])
    with pytest.raises(derive.InvalidArgument, match="W1: its size n0 has no value"):
        bp.torch()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_module_trains_with_any_optimizer_as_plain_autograd_does(dtype):
    """Adam on the derived module and on the same network in plain autograd, from the same start: equal losses."""
    bp = derive.backprop(derive.mlp([4, 6, 3], activation="tanh", output="softmax", loss="softmax_ce", layout="AW",
                                    samples=8))
    _, _, X, Y = concrete(bp.network)
    X, Y = torch.as_tensor(X, dtype=dtype), torch.as_tensor(Y, dtype=dtype)
    module = bp.torch(seed=2, dtype=dtype)
    plain = {n: p.detach().clone().requires_grad_() for n, p in module.named_parameters()}
    ours, theirs = torch.optim.Adam(module.parameters(), lr=0.05), torch.optim.Adam(plain.values(), lr=0.05)
    for _ in range(30):
        for opt in (ours, theirs):
            opt.zero_grad()
        a = module(X, Y)
        z = torch.tanh(X @ plain["W1"] + plain["b1"].T) @ plain["W2"] + plain["b2"].T
        b = -(Y * torch.log_softmax(z, dim=1)).sum() / 8
        a.backward()
        b.backward()
        ours.step()
        theirs.step()
    assert a.dtype == dtype and module.predict(X).shape == (8, 3)
    a, b = float(a.detach()), float(b.detach())
    assert abs(a - b) <= (1e-5 if dtype == torch.float32 else 1e-12) * abs(b)
    assert a < 0.5 * float(np.log(3))   # it learned


def array_cases():
    cases = []
    for name, bp in sorted(NETWORKS.items()):
        for what in ("gradients", "hvp", "gauss_newton"):
            cases.append((name, what))
    return cases


def _library_inputs(bp, what):
    sizes, scalars, X, Y = concrete(bp.network)
    net, rng = bp.network, np.random.default_rng(11)
    args = {**dict(zip([x.name for x in (*net.inputs, *net.given)], X if isinstance(X, list) else [X])), "Y": Y, **scalars,
            **bp.network.initial_parameters(1, sizes)}
    if what != "gradients":
        args.update({f"V_{n}": rng.standard_normal(v.shape) for n, v in bp.network.initial_parameters(1, sizes).items()})
    return args


@pytest.mark.slow   # a jax.jit compile per case
@pytest.mark.parametrize("name, what", array_cases())
def test_the_generated_code_runs_on_every_array_library(name, what):
    import array_api_strict as xs
    import dask.array as da

    bp = NETWORKS[name]
    f, args = bp.numpy(what), _library_inputs(bp, what)
    expected = f(**args)
    arrays = {k: v for k, v in args.items() if isinstance(v, np.ndarray)}
    other = {k: v for k, v in args.items() if k not in arrays}
    device = xs.Device("device1")   # a second device: every array the code makes must be made there
    runs = {
        "torch": lambda: f(**{k: torch.as_tensor(v) for k, v in arrays.items()}, **other),
        "jax": lambda: f(**{k: jnp.asarray(v) for k, v in arrays.items()}, **other),
        "jax.jit": lambda: jax.jit(lambda a: f(**a, **other))({k: jnp.asarray(v) for k, v in arrays.items()}),
        "array_api_strict": lambda: f(**{k: xs.asarray(v, device=device) for k, v in arrays.items()}, **other),
        "dask": lambda: {k: v.compute() for k, v in f(**{k: da.from_array(v) for k, v in arrays.items()},
                                                       **other).items()},
    }
    for library, run in runs.items():
        got = run()
        for key, value in expected.items():
            value_got = got[key]
            if library == "array_api_strict":
                assert value_got.device == device, (library, key)
                value_got = xs.asarray(value_got, device=xs.Device("CPU_DEVICE"))
            np.testing.assert_allclose(np.asarray(value_got), value, rtol=1e-10, atol=1e-12, err_msg=f"{library} {key}")


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


@requires_cuda
@pytest.mark.parametrize("name", ["seed004-two-layer", "attention-causal", "conv1d-strided", "recurrent-relu"])
def test_on_cuda_the_module_and_the_generated_code_match_the_cpu(name):
    bp = NETWORKS[name]
    sizes, scalars, X, Y = concrete(bp.network)
    cpu, gpu = (bp.torch(sizes=sizes, seed=1, dtype=torch.float64, device=d, scalars=scalars) for d in ("cpu", "cuda"))
    for module, device in ((cpu, "cpu"), (gpu, "cuda")):
        Xd = [x.to(device) for x in _tensors(X)] if isinstance(X, list) else _tensors(X).to(device)
        module(Xd, torch.as_tensor(Y, device=device)).backward()
    for (n, a), (_, b) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert b.grad.device.type == "cuda"
        np.testing.assert_allclose(b.grad.cpu().numpy(), a.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


@requires_cuda
def test_the_generated_code_runs_on_cupy():
    cp = pytest.importorskip("cupy", reason="CuPy is not installed")
    bp = NETWORKS["attention-causal"]
    f, args = bp.numpy("gradients"), _library_inputs(bp, "gradients")
    expected = f(**args)
    got = f(**{k: cp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in args.items()})
    for key, value in expected.items():
        np.testing.assert_allclose(cp.asnumpy(got[key]), value, rtol=1e-10, atol=1e-12, err_msg=key)
