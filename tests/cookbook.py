"""Matrix Cookbook identities (Petersen & Pedersen, 2012, §2.1–2.5) and SymPy's failures, as test data.

Each case: the scalar f built from SymPy symbols, the variable, f in NumPy and the book's gradient in
NumPy, both written by hand from the book (never from `derive`'s output).
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct as Had

from derive import sigmoid

inv, det, tr = np.linalg.inv, np.linalg.det, np.trace
sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731


@dataclass(frozen=True)
class Case:
    id: str
    f: Callable      # symbols -> SymPy scalar
    wrt: str
    f_np: Callable   # values -> float
    book: Callable   # values -> gradient, from the book's formula
    symmetric: tuple = ()

    def __str__(self):
        return self.id


def symbols(n, m=None):
    """The symbols of every case: square n×n matrices, n-vectors, and n×m matrices for networks."""
    m = n + 1 if m is None else m
    S = {k: sp.MatrixSymbol(k, n, n) for k in "ABCDWX"}
    S.update({k: sp.MatrixSymbol(k, n, 1) for k in "abcdxsy"})
    S.update({"P": sp.MatrixSymbol("P", n, m), "Y": sp.MatrixSymbol("Y", n, m), "Z": sp.MatrixSymbol("Z", n, m)})
    S.update({"one_n": sp.OneMatrix(n, 1), "one_m": sp.OneMatrix(m, 1), "I": sp.Identity(n)})
    return S


def values(n, m=None, seed=0, symmetric=()):
    """Random well-conditioned inputs: X = N(0, 1) + 3I is safely invertible; named ones symmetric."""
    m = n + 1 if m is None else m
    rng = np.random.default_rng(seed)
    V = {k: rng.normal(size=(n, n)) for k in "ABCDWX"}
    V["X"] = V["X"] + 3 * np.eye(n)
    V.update({k: rng.normal(size=(n, 1)) for k in "abcdxsy"})
    V.update({"P": rng.normal(size=(n, m)), "Z": rng.normal(size=(n, m)), "Y": rng.uniform(0.1, 0.9, size=(n, m))})
    for k in symmetric:
        V[k] = V[k] + V[k].T + (6 * np.eye(n) if k == "W" else 0)
    return V


T = lambda M: M.T  # noqa: E731
CASES = [
    # §2.1 determinants
    Case("cookbook-eq49-det", lambda S: sp.det(S["X"]), "X",
         lambda v: det(v["X"]), lambda v: det(v["X"]) * inv(v["X"]).T),
    Case("cookbook-eq51-det-AXB", lambda S: sp.Determinant(S["A"] * S["X"] * S["B"]), "X",
         lambda v: det(v["A"] @ v["X"] @ v["B"]), lambda v: det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T),
    Case("cookbook-eq53-det-XtAX", lambda S: sp.Determinant(S["X"].T * S["A"] * S["X"]), "X",
         lambda v: det(v["X"].T @ v["A"] @ v["X"]),
         lambda v: det(v["X"].T @ v["A"] @ v["X"]) * (v["A"] @ v["X"] @ inv(v["X"].T @ v["A"] @ v["X"])
                                                     + v["A"].T @ v["X"] @ inv(v["X"].T @ v["A"].T @ v["X"]))),
    Case("cookbook-eq54-logdet-XtX", lambda S: sp.log(sp.Determinant(S["X"].T * S["X"])), "X",
         lambda v: np.log(det(v["X"].T @ v["X"])), lambda v: 2 * np.linalg.pinv(v["X"]).T),
    Case("cookbook-eq56-logdet", lambda S: sp.log(sp.det(S["X"])), "X",
         lambda v: np.log(det(v["X"])), lambda v: inv(v["X"]).T),
    Case("cookbook-eq57-det-Xk", lambda S: sp.Determinant(S["X"] ** 3), "X",
         lambda v: det(np.linalg.matrix_power(v["X"], 3)),
         lambda v: 3 * det(np.linalg.matrix_power(v["X"], 3)) * inv(v["X"]).T),
    Case("cookbook-eq46-det-X+A", lambda S: sp.Determinant(S["X"] + S["A"]), "X",
         lambda v: det(v["X"] + v["A"]), lambda v: det(v["X"] + v["A"]) * inv(v["X"] + v["A"]).T),
    # §2.2 inverses
    Case("cookbook-eq61-aXinvb", lambda S: (S["a"].T * S["X"].I * S["b"])[0, 0], "X",
         lambda v: (v["a"].T @ inv(v["X"]) @ v["b"]).item(),
         lambda v: -inv(v["X"]).T @ v["a"] @ v["b"].T @ inv(v["X"]).T),
    Case("cookbook-eq62-det-Xinv", lambda S: sp.Determinant(S["X"].I), "X",
         lambda v: det(inv(v["X"])), lambda v: -det(inv(v["X"])) * inv(v["X"]).T),
    Case("cookbook-eq63-tr-AXinvB", lambda S: sp.Trace(S["A"] * S["X"] ** -1 * S["B"]), "X",
         lambda v: tr(v["A"] @ inv(v["X"]) @ v["B"]), lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T),
    Case("cookbook-eq64-tr-inv-X+A", lambda S: sp.Trace(sp.Inverse(S["X"] + S["A"])), "X",
         lambda v: tr(inv(v["X"] + v["A"])),
         lambda v: -(inv(v["X"] + v["A"]) @ inv(v["X"] + v["A"])).T),
    # §2.4.1 first order
    Case("cookbook-eq69-xta", lambda S: (S["x"].T * S["a"])[0, 0], "x",
         lambda v: (v["x"].T @ v["a"]).item(), lambda v: v["a"]),
    Case("cookbook-eq69-atx", lambda S: S["a"].T * S["x"], "x",
         lambda v: (v["a"].T @ v["x"]).item(), lambda v: v["a"]),
    Case("cookbook-eq70-aXb", lambda S: S["a"].T * S["X"] * S["b"], "X",
         lambda v: (v["a"].T @ v["X"] @ v["b"]).item(), lambda v: v["a"] @ v["b"].T),
    Case("cookbook-eq71-aXtb", lambda S: S["a"].T * S["X"].T * S["b"], "X",
         lambda v: (v["a"].T @ v["X"].T @ v["b"]).item(), lambda v: v["b"] @ v["a"].T),
    Case("cookbook-eq72-aXa", lambda S: S["a"].T * S["X"] * S["a"], "X",
         lambda v: (v["a"].T @ v["X"] @ v["a"]).item(), lambda v: v["a"] @ v["a"].T),
    Case("cookbook-eq72-aXta", lambda S: S["a"].T * S["X"].T * S["a"], "X",
         lambda v: (v["a"].T @ v["X"].T @ v["a"]).item(), lambda v: v["a"] @ v["a"].T),
    # §2.4.2 second order
    Case("cookbook-eq77-bXtXc", lambda S: S["b"].T * S["X"].T * S["X"] * S["c"], "X",
         lambda v: (v["b"].T @ v["X"].T @ v["X"] @ v["c"]).item(),
         lambda v: v["X"] @ (v["b"] @ v["c"].T + v["c"] @ v["b"].T)),
    Case("cookbook-eq78-affine-quadratic",
         lambda S: (S["B"] * S["x"] + S["b"]).T * S["C"] * (S["D"] * S["x"] + S["d"]), "x",
         lambda v: ((v["B"] @ v["x"] + v["b"]).T @ v["C"] @ (v["D"] @ v["x"] + v["d"])).item(),
         lambda v: v["B"].T @ v["C"] @ (v["D"] @ v["x"] + v["d"]) + v["D"].T @ v["C"].T @ (v["B"] @ v["x"] + v["b"])),
    Case("cookbook-eq81-xBx", lambda S: S["x"].T * S["B"] * S["x"], "x",
         lambda v: (v["x"].T @ v["B"] @ v["x"]).item(), lambda v: (v["B"] + v["B"].T) @ v["x"]),
    Case("cookbook-eq82-bXtDXc", lambda S: S["b"].T * S["X"].T * S["D"] * S["X"] * S["c"], "X",
         lambda v: (v["b"].T @ v["X"].T @ v["D"] @ v["X"] @ v["c"]).item(),
         lambda v: v["D"].T @ v["X"] @ v["b"] @ v["c"].T + v["D"] @ v["X"] @ v["c"] @ v["b"].T),
    Case("cookbook-eq83-Xb+c-D", lambda S: (S["X"] * S["b"] + S["c"]).T * S["D"] * (S["X"] * S["b"] + S["c"]), "X",
         lambda v: ((v["X"] @ v["b"] + v["c"]).T @ v["D"] @ (v["X"] @ v["b"] + v["c"])).item(),
         lambda v: (v["D"] + v["D"].T) @ (v["X"] @ v["b"] + v["c"]) @ v["b"].T),
    Case("cookbook-eq84-x-s-W-wrt-s", lambda S: (S["x"] - S["s"]).T * S["W"] * (S["x"] - S["s"]), "s",
         lambda v: ((v["x"] - v["s"]).T @ v["W"] @ (v["x"] - v["s"])).item(),
         lambda v: -2 * v["W"] @ (v["x"] - v["s"]), symmetric=("W",)),
    Case("cookbook-eq85-x-s-W-wrt-x", lambda S: (S["x"] - S["s"]).T * S["W"] * (S["x"] - S["s"]), "x",
         lambda v: ((v["x"] - v["s"]).T @ v["W"] @ (v["x"] - v["s"])).item(),
         lambda v: 2 * v["W"] @ (v["x"] - v["s"]), symmetric=("W",)),
    Case("cookbook-eq86-x-As-W-wrt-s", lambda S: (S["x"] - S["A"] * S["s"]).T * S["W"] * (S["x"] - S["A"] * S["s"]), "s",
         lambda v: ((v["x"] - v["A"] @ v["s"]).T @ v["W"] @ (v["x"] - v["A"] @ v["s"])).item(),
         lambda v: -2 * v["A"].T @ v["W"] @ (v["x"] - v["A"] @ v["s"]), symmetric=("W",)),
    Case("cookbook-eq87-x-As-W-wrt-A", lambda S: (S["x"] - S["A"] * S["s"]).T * S["W"] * (S["x"] - S["A"] * S["s"]), "A",
         lambda v: ((v["x"] - v["A"] @ v["s"]).T @ v["W"] @ (v["x"] - v["A"] @ v["s"])).item(),
         lambda v: -2 * v["W"] @ (v["x"] - v["A"] @ v["s"]) @ v["s"].T, symmetric=("W",)),
    Case("cookbook-eq88-x-As-W-wrt-x", lambda S: (S["x"] - S["A"] * S["s"]).T * S["W"] * (S["x"] - S["A"] * S["s"]), "x",
         lambda v: ((v["x"] - v["A"] @ v["s"]).T @ v["W"] @ (v["x"] - v["A"] @ v["s"])).item(),
         lambda v: 2 * v["W"] @ (v["x"] - v["A"] @ v["s"]), symmetric=("W",)),
    Case("cookbook-eq130-frobenius", lambda S: sp.Trace(S["X"] * S["X"].T), "X",
         lambda v: np.sum(v["X"] ** 2), lambda v: 2 * v["X"]),
    # §2.5.1 first-order traces
    Case("cookbook-eq99-trX", lambda S: sp.Trace(S["X"]), "X", lambda v: tr(v["X"]), lambda v: np.eye(len(v["X"]))),
    Case("cookbook-eq100-trXA", lambda S: sp.Trace(S["X"] * S["A"]), "X",
         lambda v: tr(v["X"] @ v["A"]), lambda v: v["A"].T),
    Case("cookbook-eq101-trAXB", lambda S: sp.Trace(S["A"] * S["X"] * S["B"]), "X",
         lambda v: tr(v["A"] @ v["X"] @ v["B"]), lambda v: v["A"].T @ v["B"].T),
    Case("cookbook-eq102-trAXtB", lambda S: sp.Trace(S["A"] * S["X"].T * S["B"]), "X",
         lambda v: tr(v["A"] @ v["X"].T @ v["B"]), lambda v: v["B"] @ v["A"]),
    Case("cookbook-eq103-trXtA", lambda S: sp.Trace(S["X"].T * S["A"]), "X",
         lambda v: tr(v["X"].T @ v["A"]), lambda v: v["A"]),
    Case("cookbook-eq104-trAXt", lambda S: sp.Trace(S["A"] * S["X"].T), "X",
         lambda v: tr(v["A"] @ v["X"].T), lambda v: v["A"]),
    # §2.5.2 second-order traces
    Case("cookbook-eq106-trX2", lambda S: sp.Trace(S["X"] ** 2), "X",
         lambda v: tr(v["X"] @ v["X"]), lambda v: 2 * v["X"].T),
    Case("cookbook-eq107-trX2B", lambda S: sp.Trace(S["X"] * S["X"] * S["B"]), "X",
         lambda v: tr(v["X"] @ v["X"] @ v["B"]), lambda v: (v["X"] @ v["B"] + v["B"] @ v["X"]).T),
    Case("cookbook-eq108-trXtBX", lambda S: sp.Trace(S["X"].T * S["B"] * S["X"]), "X",
         lambda v: tr(v["X"].T @ v["B"] @ v["X"]), lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"]),
    Case("cookbook-eq109-trBXXt", lambda S: sp.Trace(S["B"] * S["X"] * S["X"].T), "X",
         lambda v: tr(v["B"] @ v["X"] @ v["X"].T), lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"]),
    Case("cookbook-eq110-trXXtB", lambda S: sp.Trace(S["X"] * S["X"].T * S["B"]), "X",
         lambda v: tr(v["X"] @ v["X"].T @ v["B"]), lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"]),
    Case("cookbook-eq111-trXBXt", lambda S: sp.Trace(S["X"] * S["B"] * S["X"].T), "X",
         lambda v: tr(v["X"] @ v["B"] @ v["X"].T), lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"]),
    Case("cookbook-eq112-trBXtX", lambda S: sp.Trace(S["B"] * S["X"].T * S["X"]), "X",
         lambda v: tr(v["B"] @ v["X"].T @ v["X"]), lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"]),
    Case("cookbook-eq113-trXtXB", lambda S: sp.Trace(S["X"].T * S["X"] * S["B"]), "X",
         lambda v: tr(v["X"].T @ v["X"] @ v["B"]), lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"]),
    Case("cookbook-eq114-trAXBX", lambda S: sp.Trace(S["A"] * S["X"] * S["B"] * S["X"]), "X",
         lambda v: tr(v["A"] @ v["X"] @ v["B"] @ v["X"]),
         lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T),
    Case("cookbook-eq115-trXtX", lambda S: sp.Trace(S["X"].T * S["X"]), "X",
         lambda v: tr(v["X"].T @ v["X"]), lambda v: 2 * v["X"]),
    Case("cookbook-eq116-trBtXtCXB", lambda S: sp.Trace(S["B"].T * S["X"].T * S["C"] * S["X"] * S["B"]), "X",
         lambda v: tr(v["B"].T @ v["X"].T @ v["C"] @ v["X"] @ v["B"]),
         lambda v: v["C"].T @ v["X"] @ v["B"] @ v["B"].T + v["C"] @ v["X"] @ v["B"] @ v["B"].T),
    Case("cookbook-eq117-trXtBXC", lambda S: sp.Trace(S["X"].T * S["B"] * S["X"] * S["C"]), "X",
         lambda v: tr(v["X"].T @ v["B"] @ v["X"] @ v["C"]),
         lambda v: v["B"] @ v["X"] @ v["C"] + v["B"].T @ v["X"] @ v["C"].T),
    Case("cookbook-eq118-trAXBXtC", lambda S: sp.Trace(S["A"] * S["X"] * S["B"] * S["X"].T * S["C"]), "X",
         lambda v: tr(v["A"] @ v["X"] @ v["B"] @ v["X"].T @ v["C"]),
         lambda v: v["A"].T @ v["C"].T @ v["X"] @ v["B"].T + v["C"] @ v["A"] @ v["X"] @ v["B"]),
    Case("cookbook-eq119-tr-AXB+C-squared",
         lambda S: sp.Trace((S["A"] * S["X"] * S["B"] + S["C"]) * (S["A"] * S["X"] * S["B"] + S["C"]).T), "X",
         lambda v: np.sum((v["A"] @ v["X"] @ v["B"] + v["C"]) ** 2),
         lambda v: 2 * v["A"].T @ (v["A"] @ v["X"] @ v["B"] + v["C"]) @ v["B"].T),
    # §2.5.3 higher order
    Case("cookbook-eq121-trXk", lambda S: sp.Trace(S["X"] ** 4), "X",
         lambda v: tr(np.linalg.matrix_power(v["X"], 4)), lambda v: 4 * np.linalg.matrix_power(v["X"], 3).T),
    Case("cookbook-eq122-trAXk", lambda S: sp.Trace(S["A"] * S["X"] ** 3), "X",
         lambda v: tr(v["A"] @ np.linalg.matrix_power(v["X"], 3)),
         lambda v: sum((np.linalg.matrix_power(v["X"], r) @ v["A"] @ np.linalg.matrix_power(v["X"], 2 - r)).T
                       for r in range(3))),
    # §2.5.4 other
    Case("cookbook-eq124-trAXinvB", lambda S: sp.Trace(S["A"] * S["X"].I * S["B"]), "X",
         lambda v: tr(v["A"] @ inv(v["X"]) @ v["B"]), lambda v: -inv(v["X"]).T @ v["A"].T @ v["B"].T @ inv(v["X"]).T),
    Case("cookbook-eq125-tr-XtCXinv-A", lambda S: sp.Trace((S["X"].T * S["C"] * S["X"]).I * S["A"]), "X",
         lambda v: tr(inv(v["X"].T @ v["C"] @ v["X"]) @ v["A"]),
         lambda v: -v["C"] @ v["X"] @ inv(v["X"].T @ v["C"] @ v["X"]) @ (v["A"] + v["A"].T)
         @ inv(v["X"].T @ v["C"] @ v["X"]), symmetric=("C",)),
    Case("cookbook-eq126-tr-XtCXinv-XtBX",
         lambda S: sp.Trace((S["X"].T * S["C"] * S["X"]).I * (S["X"].T * S["B"] * S["X"])), "X",
         lambda v: tr(inv(v["X"].T @ v["C"] @ v["X"]) @ v["X"].T @ v["B"] @ v["X"]),
         lambda v: (-2 * v["C"] @ v["X"] @ inv(v["X"].T @ v["C"] @ v["X"]) @ v["X"].T @ v["B"] @ v["X"]
                    @ inv(v["X"].T @ v["C"] @ v["X"]) + 2 * v["B"] @ v["X"] @ inv(v["X"].T @ v["C"] @ v["X"])),
         symmetric=("B", "C")),
    # Hadamard and elementwise cases (Cookbook §2.5 with ⊙; the engine's own operators)
    Case("hadamard-tr-A-had-X", lambda S: sp.Trace(Had(S["A"], S["X"])), "X",
         lambda v: tr(v["A"] * v["X"]), lambda v: np.diag(np.diag(v["A"]))),
    Case("hadamard-1t-AhadX-1", lambda S: S["one_n"].T * Had(S["A"], S["X"]) * S["one_n"], "X",
         lambda v: np.sum(v["A"] * v["X"]), lambda v: v["A"]),
    Case("hadamard-power-sum-X3", lambda S: S["one_n"].T * sp.HadamardPower(S["X"], 3) * S["one_n"], "X",
         lambda v: np.sum(v["X"] ** 3), lambda v: 3 * v["X"] ** 2),
    Case("elementwise-sin-x-t-y", lambda S: S["x"].applyfunc(sp.sin).T * S["y"], "x",
         lambda v: (np.sin(v["x"]).T @ v["y"]).item(), lambda v: np.cos(v["x"]) * v["y"]),
    Case("elementwise-1t-exp-Ax", lambda S: S["one_n"].T * (S["A"] * S["x"]).applyfunc(sp.exp), "x",
         lambda v: np.sum(np.exp(v["A"] @ v["x"])), lambda v: v["A"].T @ np.exp(v["A"] @ v["x"])),
    Case("elementwise-tanh-frobenius", lambda S: sp.Trace((S["W"] * S["P"]).applyfunc(sp.tanh).T
                                                          * (S["W"] * S["P"]).applyfunc(sp.tanh)), "W",
         lambda v: np.sum(np.tanh(v["W"] @ v["P"]) ** 2),
         lambda v: (2 * np.tanh(v["W"] @ v["P"]) * (1 - np.tanh(v["W"] @ v["P"]) ** 2)) @ v["P"].T),
    Case("logistic-regression-wtx-entry",
         lambda S: sp.log(1 + sp.exp(-(S["a"].T * S["x"])[0, 0])), "x",
         lambda v: np.log1p(np.exp(-(v["a"].T @ v["x"]).item())),
         lambda v: -v["a"] * sig(-(v["a"].T @ v["x"]).item())),
    Case("bce-sigmoid-A-minus-Y",
         lambda S: -(S["one_n"].T * (Had(S["Y"], S["Z"].applyfunc(sigmoid).applyfunc(sp.log))
                                    + Had(sp.OneMatrix(*S["Y"].shape) - S["Y"],
                                          (sp.OneMatrix(*S["Y"].shape) - S["Z"].applyfunc(sigmoid)).applyfunc(sp.log)))
                     * S["one_m"]), "Z",
         lambda v: -np.sum(v["Y"] * np.log(sig(v["Z"])) + (1 - v["Y"]) * np.log(1 - sig(v["Z"]))),
         lambda v: sig(v["Z"]) - v["Y"]),
    Case("two-layer-sigmoid-network-W1",
         lambda S: sp.Trace((S["B"] * (S["A"] * S["P"]).applyfunc(sigmoid)).applyfunc(sigmoid).T
                            * (S["B"] * (S["A"] * S["P"]).applyfunc(sigmoid)).applyfunc(sigmoid)) / 2
         - sp.Trace(S["Y"].T * (S["B"] * (S["A"] * S["P"]).applyfunc(sigmoid)).applyfunc(sigmoid)), "A",
         lambda v: 0.5 * np.sum(sig(v["B"] @ sig(v["A"] @ v["P"])) ** 2) - np.sum(v["Y"] * sig(v["B"] @ sig(v["A"] @ v["P"]))),
         lambda v: (v["B"].T @ ((sig(v["B"] @ sig(v["A"] @ v["P"])) - v["Y"]) * sig(v["B"] @ sig(v["A"] @ v["P"]))
                                * (1 - sig(v["B"] @ sig(v["A"] @ v["P"]))))
                    * sig(v["A"] @ v["P"]) * (1 - sig(v["A"] @ v["P"]))) @ v["P"].T),
]
