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
         "convolution": derive.Conv1D, "recurrent": derive.Recurrent, "batch norm": derive.BatchNorm,
         "dropout": derive.Dropout, "GRU": derive.GRU, "LSTM": derive.LSTM, "embedding": derive.Embedding,
         "max pool": derive.MaxPool1D}


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
    "batch norm": lambda layout: derive.Network(4, [derive.Dense(3, "tanh"), derive.BatchNorm(),
                                                    derive.Dense(2, "identity")], layout=layout, samples=5),
    "dropout": lambda layout: derive.Network(4, [derive.Dense(3, "tanh"), derive.Dropout(0.25),
                                                 derive.Dense(2, "sigmoid")], loss="bce", layout=layout, samples=5),
    "GRU, 3 steps": lambda layout: derive.Network(3, [derive.GRU(4, 3), derive.Dense(2, "identity")], layout=layout,
                                                  samples=3, weight_decay=0.25),
    "LSTM, 3 steps": lambda layout: derive.Network(3, [derive.LSTM(4, 3), derive.Dense(2, "identity")], layout=layout,
                                                   samples=3),
    "embedding": lambda layout: derive.Network(6, [derive.Embedding(6, 3), derive.Dense(2, "tanh")], layout=layout,
                                               samples=5, weight_decay=0.25),
    "embedding, sizes by name": lambda layout: derive.Network("V", [derive.Embedding("V", "d"), derive.Dense(2, "tanh")],
                                                              layout=layout, samples=4),
    "max pool, width 3, stride 2": lambda layout: derive.Network(
        3, [derive.Dense(3, "tanh"), derive.MaxPool1D(3, 2), derive.Dense(2, "identity")], layout=layout, samples=8),
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
    "batch norm": lambda: derive.Network(2, [derive.Dense(2, "tanh"), derive.BatchNorm(), derive.Dense(2, "identity")],
                                         layout="WA", samples=2),
    "dropout": lambda: derive.Network(2, [derive.Dense(2, "tanh"), derive.Dropout(0.5), derive.Dense(2, "identity")],
                                      layout="AW", samples=2),
    # one step: two nest σ and tanh past what the rational-function decision expands in minutes (BPTT over steps is
    # checked against the reference and central differences)
    "GRU": lambda: derive.Network(2, [derive.GRU(2, 1), derive.Dense(2, "identity")], layout="WtA", samples=2),
    "LSTM": lambda: derive.Network(2, [derive.LSTM(2, 1), derive.Dense(2, "identity")], layout="AW", samples=2),
    "embedding": lambda: derive.Network(2, [derive.Embedding(2, 2), derive.Dense(2, "tanh")], layout="WA", samples=2),
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


@pytest.mark.parametrize("layout", LAYOUTS)
def test_an_embedding_takes_token_indices_or_one_hot_and_scatter_adds_without_a_one_hot_product(layout):
    result = derive.backprop(NETWORKS["embedding"](layout))
    source = result.source().split("def gradients")[1]   # the function, past the helpers
    assert "scatter_add(xp, " in source and "xp.take(E1" in source and "@ X" not in source and "X @" not in source
    rng = np.random.default_rng(0)
    idx = np.array([2, 2, 0, 5, 2])   # a repeated token: its rows of ∂L/∂E add up
    one_hot = np.eye(6)[idx] if layout == "AW" else np.eye(6)[idx].T
    arrays = {k: rng.normal(size=v.shape) for k, v in result.network.initial_parameters().items()}
    Y = rng.normal(size=(5, 2) if layout == "AW" else (2, 5))
    by_index, by_one_hot = result.numpy()(X=idx, Y=Y, **arrays), result.numpy()(X=one_hot, Y=Y, **arrays)
    assert all(np.allclose(by_index[k], by_one_hot[k], rtol=1e-13) for k in arrays)
    for X, message in ((np.array([0, 1, 6, 2, 2]), r"X: indices must lie in 0 … 5 \(the vocabulary\), got 0 … 6"),
                       (one_hot * 2, "X: a one-hot array needs a single 1 and zeros elsewhere"),
                       (np.zeros(5), "X: expected the index of each sample's token"),
                       (np.array([0, 1, 2]), r"X: expected shape \(5,\), got \(3,\)")):
        with pytest.raises((ValueError, TypeError), match=message):
            result.numpy()(X=X, Y=Y, **arrays)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_token_indices_of_a_small_integer_type_scatter_into_their_own_rows(dtype):
    # the scatter's bins, token × dim + column, pass 255 here: computed in uint8 they would wrap into other rows
    net = derive.Network(100, [derive.Embedding(100, 4), derive.Dense(2, "identity")], layout="AW", samples=3)
    result, rng = derive.backprop(net), np.random.default_rng(0)
    arrays = {k: rng.normal(size=v.shape) for k, v in net.initial_parameters().items()}
    Y, idx = rng.normal(size=(3, 2)), np.array([70, 3, 99])
    got = result.numpy()(X=idx.astype(dtype), Y=Y, **arrays)["E1"]
    loss = result.numpy("loss")
    numeric = verify.central_difference(lambda **a: loss(X=idx, Y=Y, **{**arrays, **a}), arrays, "E1")
    assert np.flatnonzero(np.abs(got).sum(axis=1)).tolist() == [3, 70, 99] and np.allclose(got, numeric, atol=1e-8)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_max_pool_passes_a_tie_to_the_first_largest_only(layout):
    from verify import blocks as reference

    net = derive.Network(2, [derive.Dense(2, "identity"), derive.MaxPool1D(2), derive.Dense(2, "identity")],
                         layout=layout, samples=4)
    plain = net.specification()
    arrays = reference.draw(plain, reference.shapes(plain, {}), np.random.default_rng(0))
    X = arrays["X"]
    arrays["X"] = np.stack([X[0], X[0], X[2], X[2]]) if layout == "AW" else np.stack([X[:, 0], X[:, 0], X[:, 2],
                                                                                      X[:, 2]], axis=1)   # two ties
    got = derive.backprop(net).numpy()(**arrays)
    first = reference.loss_and_gradients(plain, arrays)[1]
    every = reference.loss_and_gradients(plain, arrays, mistake="max pool")[1]
    assert all(np.allclose(got[k], first[k], rtol=1e-12) for k in first)
    assert not np.allclose(got["W1"], every["W1"])


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


def _bn_code(X, Y, W1, b1, gamma2, beta2, W3, b3, mistake=False):
    A1 = np.tanh(X @ W1 + b1.T)
    mu, var = A1.mean(0, keepdims=True), A1.var(0, keepdims=True)   # over the samples (the rows)
    inv = 1 / np.sqrt(var + 1e-5)
    xhat = (A1 - mu) * inv
    A2 = xhat * gamma2.T + beta2.T
    d3 = (A2 @ W3 + b3.T - Y) / X.shape[0]
    dA2 = d3 @ W3.T
    dxhat = dA2 * gamma2.T
    dA1 = dxhat * inv if mistake else inv * (dxhat - dxhat.mean(0, keepdims=True)
                                             - xhat * (dxhat * xhat).mean(0, keepdims=True))
    d1 = dA1 * (1 - A1 ** 2)
    return {"W1": X.T @ d1, "b1": d1.sum(0)[:, None], "gamma2": (dA2 * xhat).sum(0)[:, None],
            "beta2": dA2.sum(0)[:, None], "W3": A2.T @ d3, "b3": d3.sum(0)[:, None]}


def _dropout_code(X, M2, Y, W1, b1, W3, b3, mistake=False):
    A1 = np.tanh(X @ W1 + b1.T)
    A2 = A1 * M2 / (1 - 0.5)
    d3 = (A2 @ W3 + b3.T - Y) / X.shape[0]
    dA1 = (d3 @ W3.T) * M2 * (1 if mistake else 1 / (1 - 0.5))
    d1 = dA1 * (1 - A1 ** 2)
    return {"W1": X.T @ d1, "b1": d1.sum(0)[:, None], "W3": A2.T @ d3, "b3": d3.sum(0)[:, None]}


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _lstm_code(X1, X2, X3, Y, W2, b2, mistake=False, **p):
    H = C = np.zeros((X1.shape[0], p["Whi1"].shape[0]))
    tape = []
    for X in (X1, X2, X3):
        z = {k: X @ p[f"Wx{k}1"] + H @ p[f"Wh{k}1"] + p[f"b{k}1"].T for k in "ifgo"}
        I, F, O, G = _sigmoid(z["i"]), _sigmoid(z["f"]), _sigmoid(z["o"]), np.tanh(z["g"])
        tape.append((X, H, C, I, F, G, O))
        C = F * C + I * G
        H = O * np.tanh(C)
    d2 = (H @ W2 + b2.T - Y) / X1.shape[0]
    g = {"W2": H.T @ d2, "b2": d2.sum(0)[:, None], **{k: 0 for k in p}}
    dH, dC = d2 @ W2.T, 0
    for X, H0, C0, I, F, G, O in reversed(tape):
        T = np.tanh(F * C0 + I * G)
        dC = dC + dH * O * (1 - T ** 2)
        dz = {"i": dC * G * I * (1 - I), "f": dC * C0 * F * (1 - F), "g": dC * I * (1 - G ** 2),
              "o": dH * T * O * (1 - O)}
        dH = 0
        for k, d in dz.items():
            g[f"Wx{k}1"] = g[f"Wx{k}1"] + X.T @ d
            g[f"Wh{k}1"] = g[f"Wh{k}1"] + H0.T @ d
            g[f"b{k}1"] = g[f"b{k}1"] + d.sum(0)[:, None]
            dH = dH + d @ p[f"Wh{k}1"].T
        dC = 0 if mistake else dC * F   # the forget gate's path through the cell state
    return g


def _gru_code(X1, X2, X3, Y, W2, b2, mistake=False, **p):
    H = np.zeros((X1.shape[0], p["Whr1"].shape[0]))
    tape = []
    for X in (X1, X2, X3):
        R = _sigmoid(X @ p["Wxr1"] + H @ p["Whr1"] + p["br1"].T)
        U = _sigmoid(X @ p["Wxz1"] + H @ p["Whz1"] + p["bz1"].T)
        hn = H @ p["Whn1"]
        N = np.tanh(X @ p["Wxn1"] + R * hn + p["bn1"].T)
        tape.append((X, H, R, U, hn, N))
        H = (1 - U) * N + U * H
    d2 = (H @ W2 + b2.T - Y) / X1.shape[0]
    g = {"W2": H.T @ d2, "b2": d2.sum(0)[:, None], **{k: 0 for k in p}}
    dH = d2 @ W2.T
    for X, H0, R, U, hn, N in reversed(tape):
        dS = dH * (1 - U) * (1 - N ** 2)
        dz = {"r": dS * hn * R * (1 - R), "z": dH * (H0 - N) * U * (1 - U)}
        back = 0 if mistake else dH * U   # the direct path to H_{t−1}
        for k, d in dz.items():
            g[f"Wx{k}1"] = g[f"Wx{k}1"] + X.T @ d
            g[f"Wh{k}1"] = g[f"Wh{k}1"] + H0.T @ d
            g[f"b{k}1"] = g[f"b{k}1"] + d.sum(0)[:, None]
            back = back + d @ p[f"Wh{k}1"].T
        g["Wxn1"], g["bn1"] = g["Wxn1"] + X.T @ dS, g["bn1"] + dS.sum(0)[:, None]
        g["Whn1"] = g["Whn1"] + H0.T @ (dS * R)
        dH = back + (dS * R) @ p["Whn1"].T
    return g


def _embedding_code(X, Y, E1, W2, b2, mistake=False):
    idx = np.argmax(X, axis=1)
    A1 = E1[idx]
    d2 = (A1 @ W2 + b2.T - Y) / X.shape[0]
    dA1, dE = d2 @ W2.T, np.zeros_like(E1)
    if mistake:   # assigned: a repeated token keeps one sample's gradient
        dE[idx] = dA1
    else:
        np.add.at(dE, idx, dA1)
    return {"E1": dE, "W2": A1.T @ d2, "b2": d2.sum(0)[:, None]}


MISTAKES = {
    "layer norm": (lambda: derive.Network(2, [derive.Dense(3, "tanh"), derive.LayerNorm(), derive.Dense(2, "identity")],
                                          layout="AW", samples=4), _ln_net_code, "without the mean and variance"),
    "self-attention": (lambda: derive.Network(3, [derive.SelfAttention(2), derive.Dense(2, "identity")], layout="AW",
                                              samples=4), _attention_code, "row-sum term"),
    "recurrent": (lambda: derive.Network(2, [derive.Recurrent(3, 3), derive.Dense(2, "identity")], layout="AW",
                                         samples=4), _rnn_code, "truncated to one step"),
    "convolution": (lambda: derive.Network(2, [derive.Conv1D(2, 3)], layout="AW", samples=6), _conv_code,
                    "kernel flipped"),
    "batch norm": (lambda: derive.Network(2, [derive.Dense(3, "tanh"), derive.BatchNorm(), derive.Dense(2, "identity")],
                                          layout="AW", samples=4), _bn_code,
                   "batch norm without the mean and variance"),
    "dropout": (lambda: derive.Network(2, [derive.Dense(3, "tanh"), derive.Dropout(0.5), derive.Dense(2, "identity")],
                                       layout="AW", samples=4), _dropout_code, r"1/\(1 − p\) left out"),
    "LSTM": (lambda: derive.Network(2, [derive.LSTM(3, 3), derive.Dense(2, "identity")], layout="AW", samples=4),
             _lstm_code, "forget gate's path missing"),
    "GRU": (lambda: derive.Network(2, [derive.GRU(3, 3), derive.Dense(2, "identity")], layout="AW", samples=4),
            _gru_code, "direct path from H_t to H_{t−1} left out"),
    "embedding": (lambda: derive.Network(5, [derive.Embedding(5, 3), derive.Dense(2, "identity")], layout="AW",
                                         samples=4), _embedding_code, "assigned per token, not added up"),
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
    ([derive.BatchNorm()], {"samples": 1}, r"layer 1 \(batch norm\): a batch norm normalises over the samples; this "
                                          r"network has one \(m = 1\)"),
    ([derive.Dropout(1)], {}, r"layer 1 \(dropout\): p must be a number in \[0, 1\), got 1"),
    ([derive.Dropout("0.5")], {}, r"layer 1 \(dropout\): p must be a number in \[0, 1\), got '0.5'"),
    ([derive.Dense(3), derive.LSTM(3, 2)], {}, r"layer 2 \(LSTM\): .* must be the network's first layer"),
    ([derive.GRU(3, 0)], {}, r"layer 1 \(GRU\): steps must be an integer ≥ 1, got 0"),
    ([derive.MaxPool1D(2)], {}, r"layer 1 \(max pool\): a max pool over the samples \(time\) axis needs their number"),
    ([derive.MaxPool1D(9)], {"samples": 4}, r"layer 1 \(max pool\): width 9 is longer than the 4 time steps"),
    ([derive.Embedding(5, 3)], {}, r"layer 1 \(embedding\): vocab 5 must equal the network's inputs 4"),
    ([derive.Dense(4), derive.Embedding(4, 3)], {}, r"layer 2 \(embedding\): .* must be the network's first layer"),
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
