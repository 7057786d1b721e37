"""Blocks beyond the MLP: each block's gradients against verify's hand-written NumPy reference and central
differences (random networks by hypothesis, every layout, float64 and float32), classic mistakes in hand-written
code caught with a hint, bad input refused naming the layer."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import derive
import verify
from derive.errors import InvalidArgument
from verify.strategies import block_networks

KINDS = {"dense": derive.Dense, "layer norm": derive.LayerNorm, "self-attention": derive.SelfAttention,
         "convolution": derive.Conv1D, "recurrent": derive.Recurrent}


def build(plain):
    """derive's blocks from the plain data of verify.strategies.block_networks."""
    def block(b):
        if b["kind"] == "residual":
            return derive.Residual([block(x) for x in b["layers"]])
        return KINDS[b["kind"]](**{k: v for k, v in b.items() if k != "kind"})
    return derive.Network(plain["inputs"], [block(b) for b in plain["blocks"]], loss=plain["loss"],
                          layout=plain["layout"], samples=plain["samples"], reduction=plain["reduction"],
                          weight_decay=plain["weight_decay"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block_networks())
def test_random_block_networks_match_the_reference_and_central_differences(plain):
    # float64 at 1e-8; float32 is checked on the fixed networks below (a random stack of six blocks can amplify
    # float32 rounding past 1e-4: a layer norm over three features of nearly equal values)
    report = verify.check(derive.backprop(build(plain)), trials=1)
    assert report.rows and report.passed, str(report)


LAYOUTS = ("WA", "WtA", "AW")
NETWORKS = {
    "layer norm": lambda layout: derive.Network(4, [derive.Dense(3, "tanh"), derive.LayerNorm(),
                                                    derive.Dense(2, "identity")], layout=layout, samples=5),
    "attention, 2 causal heads": lambda layout: derive.Network(
        4, [derive.SelfAttention(2, heads=2, causal=True), derive.Dense(3, "softmax")], loss="softmax_ce",
        layout=layout, samples=5),
    "residual": lambda layout: derive.Network(
        3, [derive.Residual([derive.Dense(4, "relu"), derive.Dense(3, "identity")]), derive.Dense(2, "sigmoid")],
        loss="bce", layout=layout, samples=4, weight_decay=0.5),
    "convolution, stride 2, padding 1": lambda layout: derive.Network(
        2, [derive.Conv1D(3, 3, stride=2, padding=1, activation="tanh"), derive.Conv1D(2, 2)], layout=layout,
        samples=8),
    "recurrent, 4 steps": lambda layout: derive.Network(3, [derive.Recurrent(4, 4), derive.Dense(2, "identity")],
                                                        layout=layout, samples=3),
    "tied autoencoder": lambda layout: derive.Network(4, [derive.Dense(2, "sigmoid"),
                                                          derive.Dense(4, "identity", tie="W1")],
                                                      layout=layout, samples=3),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", NETWORKS)
def test_each_block_matches_the_reference_in_every_layout(name, layout, dtype):
    report = verify.check(derive.backprop(NETWORKS[name](layout)), trials=2, dtype=dtype)
    assert report.passed, str(report)
    assert {r.check for r in report.rows} == {"reference", "finite differences"}


# a convolution or recurrent layer that ends the network: its activation is the output's, for the losses that
# need one (bce: sigmoid; softmax_ce: sigmoid or softplus) and for the code's forms (relu's mask, softplus's ratio)
ENDINGS = {
    "convolution, sigmoid, bce": lambda layout: derive.Network(
        3, [derive.Conv1D(2, 2, activation="sigmoid")], loss="bce", layout=layout, samples=5),
    "convolution, softplus, softmax_ce": lambda layout: derive.Network(
        3, [derive.Dense(3, "tanh"), derive.Conv1D(2, 2, padding=1, activation="softplus")], loss="softmax_ce",
        layout=layout, samples=4),
    "convolution, relu": lambda layout: derive.Network(3, [derive.Conv1D(2, 2, activation="relu")], layout=layout,
                                                       samples=5),
    "recurrent, sigmoid, bce": lambda layout: derive.Network(3, [derive.Recurrent(2, 3, "sigmoid")], loss="bce",
                                                             layout=layout, samples=3),
    "recurrent, softplus, softmax_ce": lambda layout: derive.Network(
        3, [derive.Recurrent(2, 2, "softplus")], loss="softmax_ce", layout=layout, samples=3, weight_decay=0.5),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ENDINGS)
def test_a_convolution_or_recurrent_output_takes_the_loss_of_its_activation(name, layout):
    result = derive.backprop(ENDINGS[name](layout))
    report = verify.check(result, trials=2)
    assert report.passed and {"reference", "finite differences"} <= {r.check for r in report.rows}, str(report)
    assert result.numpy("loss") is not None


@pytest.mark.parametrize("layers, loss", [([derive.Conv1D(2, 2, activation="tanh")], "bce"),
                                          ([derive.Recurrent(2, 2)], "softmax_ce"),
                                          ([derive.Conv1D(2, 2)], "bce")])
def test_a_convolution_or_recurrent_output_of_the_wrong_activation_is_refused(layers, loss):
    act = getattr(layers[0], "activation")
    with pytest.raises(InvalidArgument, match=rf"layer 1: loss '{loss}' needs an output activation in .*got '{act}'"):
        derive.Network(3, layers, loss=loss, samples=4)


EXACT = {
    "layer norm": lambda: derive.Network(2, [derive.Dense(2, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")],
                                         layout="AW", samples=2),
    "attention, 2 causal heads": lambda: derive.Network(2, [derive.SelfAttention(1, heads=2, causal=True),
                                                            derive.Dense(2, "identity")], layout="WA", samples=2),
    "residual": lambda: derive.Network(2, [derive.Residual([derive.Dense(2, "tanh"), derive.Dense(2, "identity")]),
                                           derive.Dense(2, "sigmoid")], loss="bce", layout="WtA", samples=2,
                                       weight_decay=0.5),
    "convolution": lambda: derive.Network(2, [derive.Conv1D(2, 2, stride=2, padding=1, activation="tanh")],
                                          layout="AW", samples=3),
    "recurrent": lambda: derive.Network(2, [derive.Recurrent(2, 2), derive.Dense(2, "identity")], layout="WA",
                                        samples=2),
    "tied": lambda: derive.Network(2, [derive.Dense(2, "sigmoid"), derive.Dense(2, "identity", tie="W1")],
                                   layout="AW", samples=2),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXACT)
def test_exact_proof_at_width_2_for_every_block(name):
    """The derived formulas, written out entry by entry, equal SymPy's diff of verify's own explicit loss."""
    report = verify.check(derive.backprop(EXACT[name]()), trials=1, exact_proof=True)
    exact = [r for r in report.rows if r.check == "exact (SymPy diff)"]
    assert report.passed and exact and all(r.detail == "equal as expressions" for r in exact), str(report)


def test_exact_proof_catches_a_wrong_block_gradient():
    result = derive.backprop(EXACT["tied"]())
    wrong = type(result)(result.network, result.forward, result.deltas,
                         {**result.gradients, "W1": derive.core.expr.matmul(2, result.gradients["W1"])},
                         result.steps, result.adjoints)
    report = verify.check(wrong, trials=1, exact_proof=True)
    assert {(r.parameter, r.check) for r in report.failures()} == {
        ("W1", "reference"), ("W1", "finite differences"), ("W1", "exact (SymPy diff)")}


def test_a_tied_weight_sums_both_uses():
    net = NETWORKS["tied autoencoder"]("WA")
    assert [p.name for p in net.parameters] == ["W1", "b1", "b2"]
    G = derive.backprop(net).gradients["W1"]
    assert G.has(net.layers[0].delta) and G.has(net.layers[1].delta)   # δ⁽¹⁾ A⁽⁰⁾ᵀ + (δ⁽²⁾ A⁽¹⁾ᵀ)ᵀ


def test_recurrent_gradient_is_a_sum_over_time_steps():
    net = NETWORKS["recurrent, 4 steps"]("WA")
    bp = derive.backprop(net)
    Wh = bp.gradients["Wh1"]
    deltas = [d for d in bp.deltas if d.name.startswith("delta1_")]
    assert len(deltas) == 4 and all(Wh.has(d) for d in deltas[:-1])   # Σ_t δ_t H_{t−1}ᵀ over t = 2 … 4
    names = [a.name for a in bp.plan()[0]]
    assert names[:5] == ["X1", "X2", "X3", "X4", "Y"]


def test_generated_code_forms_no_selection_or_ones_matrix():
    for name in NETWORKS:
        source = derive.backprop(NETWORKS[name]("AW")).source()
        assert "selection(" not in source and "xp.ones(" not in source, name


# --- the classic mistakes, made in hand-written backward passes (rows are samples, layout AW)
def _ln_net_code(X, Y, W1, b1, gamma2, beta2, W3, b3, mistake=False):
    Z1 = X @ W1 + b1.T
    A1 = np.tanh(Z1)
    mu, var = A1.mean(1, keepdims=True), A1.var(1, keepdims=True)
    inv = 1 / np.sqrt(var + 1e-5)
    xhat = (A1 - mu) * inv
    A2 = xhat * gamma2.T + beta2.T
    A3 = A2 @ W3 + b3.T
    d3 = (A3 - Y) / X.shape[0]
    dA2 = d3 @ W3.T
    dxhat = dA2 * gamma2.T
    n = A1.shape[1]
    dA1 = dxhat * inv if mistake else inv * (dxhat - dxhat.mean(1, keepdims=True)
                                             - xhat * (dxhat * xhat).mean(1, keepdims=True))
    d1 = dA1 * (1 - A1 ** 2)
    assert n == 3
    return {"W1": X.T @ d1, "b1": d1.sum(0)[:, None], "gamma2": (dA2 * xhat).sum(0)[:, None],
            "beta2": dA2.sum(0)[:, None], "W3": A2.T @ d3, "b3": d3.sum(0)[:, None]}


def _attention_code(X, Y, Wq1, Wk1, Wv1, Wo1, W2, b2, mistake=False):
    Q, K, V = X @ Wq1, X @ Wk1, X @ Wv1
    S = Q @ K.T / np.sqrt(Q.shape[1])
    P = np.exp(S - S.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    O = P @ V
    A1 = O @ Wo1
    A2 = A1 @ W2 + b2.T
    d2 = (A2 - Y) / X.shape[0]
    dA1 = d2 @ W2.T
    dO = dA1 @ Wo1.T
    dP = dO @ V.T
    dS = P * dP if mistake else P * (dP - (dP * P).sum(1, keepdims=True))
    dQ, dK = dS @ K / np.sqrt(Q.shape[1]), dS.T @ Q / np.sqrt(Q.shape[1])
    return {"Wq1": X.T @ dQ, "Wk1": X.T @ dK, "Wv1": X.T @ (P.T @ dO), "Wo1": O.T @ dA1, "W2": A1.T @ d2,
            "b2": d2.sum(0)[:, None]}


def _rnn_code(X1, X2, X3, Y, Wx1, Wh1, b1, W2, b2, mistake=False):
    Xs, Hs, H = (X1, X2, X3), [], np.zeros((X1.shape[0], Wh1.shape[0]))
    for X in Xs:
        H = np.tanh(H @ Wh1 + X @ Wx1 + b1.T)
        Hs.append(H)
    A2 = H @ W2 + b2.T
    d2 = (A2 - Y) / X1.shape[0]
    g = {"Wx1": 0, "Wh1": 0, "b1": 0, "W2": H.T @ d2, "b2": d2.sum(0)[:, None]}
    dH = d2 @ W2.T
    for t in (2, 1, 0):
        dZ = dH * (1 - Hs[t] ** 2)
        g["Wx1"] = g["Wx1"] + Xs[t].T @ dZ
        g["b1"] = g["b1"] + dZ.sum(0)[:, None]
        g["Wh1"] = g["Wh1"] + (Hs[t - 1].T @ dZ if t else 0)
        if mistake:
            break
        dH = dZ @ Wh1.T
    return g


def _conv_code(X, Y, K1, b1, mistake=False):
    T, c = X.shape
    w = K1.shape[0] // c
    patches = np.stack([X[t:t + w].reshape(-1) for t in range(T - w + 1)])
    Z = patches @ K1 + b1.T
    d = (Z - Y) / Z.shape[0]
    dK = patches.T @ d
    if mistake:   # the kernel flipped: the taps in reverse order
        dK = np.concatenate([dK[j * c:(j + 1) * c] for j in reversed(range(w))])
    return {"K1": dK, "b1": d.sum(0)[:, None]}


MISTAKES = {
    "layer norm": (lambda: derive.Network(2, [derive.Dense(3, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")],
                                          layout="AW", samples=4), _ln_net_code, "without the mean and variance"),
    "self-attention": (lambda: derive.Network(3, [derive.SelfAttention(2), derive.Dense(2, "identity")], layout="AW",
                                              samples=4), _attention_code, "row-sum term"),
    "recurrent": (lambda: derive.Network(2, [derive.Recurrent(3, 3), derive.Dense(2, "identity")], layout="AW",
                                         samples=4), _rnn_code, "truncated to one step"),
    "convolution": (lambda: derive.Network(2, [derive.Conv1D(2, 3)], layout="AW", samples=6), _conv_code,
                    "kernel flipped"),
}


@pytest.mark.parametrize("block", MISTAKES)
def test_classic_mistakes_in_hand_written_code_are_caught_with_a_hint(block):
    make, code, words = MISTAKES[block]
    net = make()
    verify.assert_gradients_match(lambda **a: code(**a), net)          # the right code passes
    with pytest.raises(AssertionError, match=f"this mistake gives: .*{words}"):
        verify.assert_gradients_match(lambda **a: code(**a, mistake=True), net)


@pytest.mark.parametrize("layers, kwargs, message", [
    ([derive.Residual([derive.Dense(3, "tanh")])], {}, r"residual 1 \(layers 1–1\): x \+ F\(x\) needs F\(x\) of the "
                                                       r"shape of x: x has width 4"),
    ([derive.SelfAttention(0)], {}, r"layer 1 \(self-attention\): d_k must be an integer ≥ 1, got 0"),
    ([derive.SelfAttention(2, heads=1.5)], {}, r"layer 1 \(self-attention\): heads must be an integer"),
    ([derive.SelfAttention(2, causal=True)], {"samples": 1}, r"layer 1 \(self-attention\): a causal mask needs a "
                                                               r"token axis"),
    ([derive.Recurrent(3, 0)], {}, r"layer 1 \(recurrent\): steps must be an integer ≥ 1, got 0"),
    ([derive.Dense(3), derive.Recurrent(3, 2)], {}, r"layer 2 \(recurrent\): .* must be the network's first layer"),
    ([derive.Dense(2), derive.Dense(4, tie="W7")], {}, r"layer 2: tie='W7' names no earlier dense weight \(the "
                                                       r"weights so far: W1\)"),
    ([derive.Dense(2), derive.Dense(3, tie="W1")], {}, r"layer 2: tie='W1': this layer needs a weight of shape "
                                                       r"\(3, 2\), and W1ᵀ has shape \(4, 2\)"),
    ([derive.Conv1D(2, 3)], {}, r"layer 1 \(convolution\): a convolution over the samples \(time\) axis needs "
                                r"their number"),
    ([derive.Conv1D(2, 9)], {"samples": 4}, r"layer 1 \(convolution\): width 9 is longer than the 4 time steps"),
    ([derive.LayerNorm(eps="1e-5")], {}, r"layer 1 \(layer norm\): eps must be a positive number"),
    (["dense"], {}, r"layer 1: 'dense' is not a registered block"),
])
def test_bad_blocks_are_refused_naming_the_layer(layers, kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        derive.Network(4, layers, **kwargs)


# --- derive run spec.toml with [[layers]]
SPEC = '''name = "tiny"
inputs = 4
samples = 5
layout = "AW"
loss = "softmax_ce"

[[layers]]
kind = "residual"
  [[layers.layers]]
  kind = "layer_norm"
  [[layers.layers]]
  kind = "self_attention"
  d_k = 2
  heads = 2
  causal = true

[[layers]]
kind = "dense"
units = 3
activation = "softmax"
'''


def test_run_spec_with_blocks_writes_and_verifies(capsys, tmp_path):
    from derive.cli.main import main

    spec = tmp_path / "net.toml"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf"]) == 0
    out = capsys.readouterr().out
    assert "verification: PASSED" in out and "reference, finite differences" in out
    assert "causal softmax" in (tmp_path / "out" / "tiny" / "derivation.txt").read_text()


@pytest.mark.parametrize("layers, message", [
    ('[[layers]]\nkind = "conv1d"\nchannels = 2\n', "spec: layers[0] (kind 'conv1d') needs width"),
    ('[[layers]]\nkind = "residual"\n[[layers.layers]]\nkind = "dense"\nunits = 3\ncolor = 1\n',
     "spec: unknown key layers[0].layers[0].color for kind 'dense'; valid keys: units, activation, bias, tie"),
    ('[[layers]]\nkind = "attention"\n', "spec: layers[0].kind = 'attention' is not valid; choices: dense, residual"),
    ('[[layers]]\nkind = "self_attention"\nd_k = "2"\n', "spec: layers[0].d_k = '2' has the wrong type"),
    ('[[layers]]\nkind = "dense"\nunits = "../x"\n', "layers[0].units = '../x' is neither a positive integer"),
    ('[[layers]]\nkind = "recurrent"\nhidden = 3\nsteps = 0\n', "spec: layers[0].steps = 0: must be between 1 and 100"),
])
def test_run_spec_with_bad_layers_names_the_key_path(capsys, tmp_path, layers, message):
    from derive.cli.main import main

    spec = tmp_path / "net.toml"
    spec.write_text(f'inputs = 4\nsamples = 5\n{layers}')
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layer, loss", [('kind = "conv1d"\nchannels = 2\nwidth = 2\nactivation = "sigmoid"', "bce"),
                                         ('kind = "recurrent"\nhidden = 2\nsteps = 2', "half_sse")])
def test_run_spec_ending_in_a_convolution_or_recurrent_layer_writes_its_documents(capsys, tmp_path, layer, loss):
    from derive.cli.main import main

    spec = tmp_path / "net.toml"
    spec.write_text(f'name = "end"\ninputs = 3\nsamples = 4\nloss = "{loss}"\n[[layers]]\n{layer}\n')
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--no-pdf"]) == 0, capsys.readouterr().err
    assert "verification: PASSED" in capsys.readouterr().out
    text = (tmp_path / "out" / "end" / "derivation.txt").read_text()
    assert "The output layer: from L to δ1" in text and "∂L/∂b1 = " in text
