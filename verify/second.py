"""Second order: Hessians, Hessian-vector and Gauss–Newton products against central differences of gradients (the
recursion's, for networks), their symmetry, and an exact SymPy proof (second derivatives entry by entry)."""
from collections.abc import Callable, Mapping
from typing import Any
from collections.abc import Mapping

import numpy as np
import sympy as sp

from . import exact, recursion
from .report import EXPLICIT_ENTRIES, EXPLICIT_F, FD_ROUNDING, Report, Row, _in_domain, _sympy, gradient_rows, row, shape_at, shaped
from .numeric import agreement, copies, rounding_floor, scale_of, trials_at_least_one
from .model import reference

EPS = 1e-5         # central-difference step of a gradient (float64): error ~ ε² f''' + 1e-16/ε
TOLERANCE = 1e-6   # relative, as the issue asks of second order
PRODUCTS = ("hvp", "gauss_newton")
EXACT_ENTRIES = 4  # the exact proof runs by default for a variable of at most this many entries (at width 2)


def along(gradient, values, directions, eps=EPS, noise=None):
    """{name: (g(x + εv) − g(x − εv)) / 2ε}: the derivative of the dict-valued gradient g along `directions` (the
    entries of `values` without a direction held fixed); `noise`, a dict, receives per name the rounding this
    quotient can carry: FD_ROUNDING ulps of g over 2ε."""
    plus = gradient({k: x + eps * directions[k] if k in directions else x for k, x in values.items()})
    minus = gradient({k: x - eps * directions[k] if k in directions else x for k, x in values.items()})
    if noise is not None:
        for k in plus:
            g = max(scale_of([plus[k]]), scale_of([minus[k]]))
            noise[k] = max(noise.get(k, 0.0), FD_ROUNDING * float(np.finfo(np.float64).eps) * g / eps)
    return {k: (np.asarray(plus[k]) - np.asarray(minus[k])) / (2 * eps) for k in plus}


def with_error(product):
    """(P(ε), {key: error}) for a central-difference product P(step, noise): the error of P(ε) bounded by the change
    from step 2ε (truncation: the 2ε estimate's is four times the ε one's) and by the rounding its quotients report
    in `noise` (see along)."""
    noise = {}
    fine, coarse = product(EPS, noise), product(2 * EPS, None)
    return fine, {k: 4 * float(np.max(np.abs(fine[k] - coarse[k]), initial=0.0)) + noise.get(k, 0.0) for k in fine}


def product_rows(got, expected, error, trial, check, detail=""):
    """One row per block of a product: each block on its own scale, above the reference's own error and the
    rounding floor at the whole product's scale."""
    floor = rounding_floor(np.float64, scale_of(expected.values()))
    return [row(name, trial, check, got[name], E, rtol=TOLERANCE, floor=floor, error=error[name], detail=detail)
            for name, E in expected.items()]


def network_product(spec, X, Y, params, V, kind="hvp", eps=EPS, noise=None):
    """{parameter: H v} (central differences of the recursion's gradient along V) or {parameter: G v} with G = Jᵀ H_L J
    the Gauss–Newton matrix: J v by central differences of the recursion's output Z^(L), H_L (J v) by central
    differences of its output δ, Jᵀ by its δ recursion, plus λ V for the weight decay."""
    if kind == "hvp":
        return along(lambda p: recursion.gradients(spec, X, Y, p), params, V, eps, noise)
    Zs, As = recursion.forward(spec, X, params)
    Jv = along(lambda p: {"Z": recursion.forward(spec, X, p)[0][-1]}, params, V, eps)["Z"]
    HJv = along(lambda z: {"d": recursion.output_delta(spec, z["Z"], Y)}, {"Z": Zs[-1]}, {"Z": Jv}, eps)["d"]
    out = recursion.backward(spec, Zs, As, params, HJv)
    return {k: g + spec.weight_decay * V[k] if k.startswith("W") else g for k, g in out.items()}


def _directions(params, rng):
    return {k: rng.normal(size=np.shape(p)) for k, p in params.items()}


def assert_hvp_match(fn: Callable[..., Mapping[str, Any]], net: Any, *, kind: str = "hvp", trials: int = 2, seed: int = 0,
                     width: int = 3, samples: int = 3, weight_decay: float = 0.1) -> None:
    """Check fn(X=..., Y=..., W1=..., b1=..., ..., V_W1=..., V_b1=..., ...) -> {parameter: product} against the
    product of the network's Hessian (kind="hvp") or Gauss–Newton matrix (kind="gauss_newton") with the directions
    V_<parameter>, from verify's own recursion, at random inputs; raise AssertionError naming the parameter, the worst
    entry and both values. Each block is compared on its own scale (relative TOLERANCE), above the reference's
    own central-difference error; non-finite entries fail. Sizes as in assert_gradients_match."""
    __tracebackhide__ = True   # pytest shows the caller's line and the message, not this function's frames
    if kind not in PRODUCTS:
        raise ValueError(f"kind must be one of {PRODUCTS}, got {kind!r}")
    plain = net.specification() if hasattr(net, "specification") else net
    trials_at_least_one(trials)
    rng, decided = np.random.default_rng(seed), set()
    for trial in range(trials):
        inputs, params, expected = _draw_product(plain, kind, rng, width, samples, weight_decay)
        directions = _directions(params, rng)
        expected, error = with_error(lambda eps, noise: expected(directions, eps, noise))
        try:
            got = fn(**{k: np.array(v, copy=True) for k, v in inputs.items()},
                     **{f"V_{k}": v.copy() for k, v in directions.items()})
        except Exception as e:
            raise AssertionError(f"the {kind} function raised {type(e).__name__}: {e}") from e
        if not isinstance(got, Mapping) or set(got) != set(expected):
            raise AssertionError(f"the {kind} function must return {{parameter: product}} with the keys "
                                 f"{', '.join(expected)}; got {sorted(got) if isinstance(got, Mapping) else type(got)}")
        for r in product_rows(got, expected, error, trial, kind):
            decided |= {r.parameter} if r.conclusive else set()
            if not r.passed:
                G, E = np.asarray(got[r.parameter], dtype=np.float64), expected[r.parameter]
                at = np.unravel_index(np.argmax(np.abs(G - E)), E.shape) if G.shape == E.shape else None
                where = f", worst at entry {at}: got {G[at]:.6g}, expected {E[at]:.6g}" if at is not None and \
                    np.all(np.isfinite(G)) else ""
                raise AssertionError(f"{r.parameter}: {kind} mismatch{where} ({r.detail}) [trial {trial}, seed {seed}]")
    if set(expected) - decided:
        raise AssertionError(f"inconclusive for {', '.join(sorted(set(expected) - decided))}: the reference's own "
                             f"central-difference error was too large at every point drawn; try more trials or "
                             f"another seed [seed {seed}]")


def _draw_product(plain, kind, rng, width, samples, weight_decay):
    """(inputs by name, parameters by name, directions -> expected product) for a network specification, from its
    reference (verify.model)."""
    return _drawn(reference(plain, width, samples, weight_decay), kind, rng)


def _drawn(model, kind, rng):
    arrays = model.draw(rng)
    return ({**arrays, **model.scalars}, model.parameters(arrays),
            lambda V, eps, noise: model.product(arrays, V, kind, eps, noise))


def check_products(result: Any, kind: str = "hvp", *, seed: int = 0, trials: int = 3, width: int = 3, samples: int = 3,
                   exact_proof: bool = False) -> Report:
    """A Report comparing result.numpy(kind) (a derived backprop's Hessian-vector or Gauss–Newton product) with
    verify's own products (of its reference's gradient: verify.model), for every parameter; exact_proof=True adds the
    exact proof of the Hessian-vector product at width 2 and one sample (seconds to a minute: see
    exact_product_rows)."""
    if kind not in PRODUCTS:
        raise ValueError(f"kind must be one of {PRODUCTS}, got {kind!r}")
    plain = result.specification()
    fn, model = result.numpy(kind), reference(plain, width, samples, 0.1)
    report = Report(f"{kind}: {plain['network']['title']}", "float64", seed, {"width": width, "samples": samples},
                    notes=list(model.notes) + ([f"Gauss–Newton matrix Jᵀ H_L J {model.split()}"]
                                               if kind == "gauss_newton" else []))
    rng = np.random.default_rng(seed)
    for trial in range(trials_at_least_one(trials)):
        inputs, params, expected = _drawn(model, kind, rng)
        directions = _directions(params, rng)
        got = fn(**copies({**inputs, **{f"V_{k}": v for k, v in directions.items()}}))
        expected_, error = with_error(lambda eps, noise: expected(directions, eps, noise))
        report.rows.extend(product_rows(got, expected_, error, trial, "central differences",
                                        f"of the {model.check or 'central differences'}' gradient" if kind == "hvp"
                                        else f"J v, H_L J v; Jᵀ by {model.check or 'central differences'}"))
    if exact_proof:
        if kind != "hvp":
            raise ValueError("the exact proof is of a Hessian-vector product (kind='hvp')")
        report.rows.extend(exact_product_rows(result, seed))
        report.notes.append("exact proof at width 2, one sample")
    return report


def check_second(d: Any, *, seed: int = 0, trials: int = 3, width: int = 3, exact_proof: bool | None = None) -> Report:
    """A Report for a derive.SecondDerivation: the generated gradient against f (SymPy's evaluation of the formula
    for small inputs, central differences of f evaluated by SymPy), the generated Hessian (or H v) against central
    differences of that checked gradient, the Hessian's symmetry, and an exact proof at
    width 2 (SymPy's second derivatives of f written out entry by entry) when the inputs are few or exact_proof."""
    spec = d.specification()
    kind, args, X = spec["kind"], spec["arguments"], spec["wrt"]
    dims = {s: width for a in args if a.is_Matrix for s in a.shape if s.is_Symbol}
    shapes = {str(a): shape_at(a, dims) for a in args}
    report = Report(f"{kind}: {spec['title']}", "float64", seed, {str(k): v for k, v in sorted(dims.items(), key=str)})
    both = d.numpy(f"gradient_and_{kind}")
    name, V = str(X), spec["direction"]
    label = ("H v" if kind == "hvp" else "H") + f" of {name}"   # the rows of the result, apart from the gradient's
    rng = np.random.default_rng(seed)
    # restricted to symmetric matrices: P H P with P = (I + K)/2, the derivative of sym(G) along sym(direction)
    sym = (lambda M: (M + M.T) / 2) if spec["symmetric"] else None
    project = sym or (lambda M: M)

    def gradient(point):
        with np.errstate(all="ignore"):
            return {name: np.asarray(both(**copies(point))["gradient"], dtype=np.float64)}

    value, formula = (_sympy(spec["where"], spec[k], args, dims) for k in ("f", "gradient"))
    entries = sum(int(np.prod(x)) for x in shapes.values())
    small, explicit = entries <= EXPLICIT_ENTRIES, entries <= EXPLICIT_F
    if not explicit:   # SymPy's explicit f is too slow: the point from the program, the gradient unchecked here
        value = lambda **p: both(**p)["gradient"]  # noqa: E731
        report.notes.append(f"more than {EXPLICIT_F} input entries: the gradient is not checked against f here "
                            "(verify.check of derive.derivation(f, X) does)")
    for trial in range(trials_at_least_one(trials)):
        point = _in_domain(value, shapes, rng)
        if point is None:
            report.notes.append("no point found where f is finite: nothing checked")
            return report
        try:   # where f is finite, the program must run
            with np.errstate(all="ignore"):
                out = both(**copies(point))   # the gradient and the result from one call
        except Exception as e:
            report.rows.append(Row(name, trial, "runs", np.nan, np.nan, False,
                                   f"the program raised {type(e).__name__}: {e}"))
            continue
        got = np.asarray(out[kind], dtype=np.float64)
        # the level below first: the program's gradient against f itself
        if explicit:
            report.rows.extend(gradient_rows(name, trial, out["gradient"], value, formula if small else None,
                                             point, rng, sym))
        if kind == "hvp":
            expected, error = with_error(lambda eps, noise: along(gradient, point, {name: project(point[str(V)])},
                                                                  eps, noise))
            report.rows.append(row(label, trial, "central differences", shaped(got, np.shape(point[name])),
                                   expected[name], rtol=TOLERANCE, floor=rounding_floor(np.float64, expected[name]),
                                   error=error[name], detail="of the checked gradient along V"))
            continue

        def columns(eps, noise):   # H e_k = ∂G/∂x_k, column by column in column-major vec order
            if not shapes[name]:
                return {name: along(gradient, point, {name: 1.0}, eps, noise)[name]}
            units = [project(_unit(point[name], k)) for k in range(np.size(point[name]))]
            return {name: np.column_stack([_vec(along(gradient, point, {name: e}, eps, noise)[name]) for e in units])}
        expected, error = with_error(columns)
        size = int(np.size(point[name]))
        expected, got = shaped(expected[name], (size, size)), shaped(got, (size, size))
        report.rows.append(row(label, trial, "central differences", got, expected, rtol=TOLERANCE,
                               floor=rounding_floor(np.float64, expected), error=error[name],
                               detail="of the checked gradient, column by column"))
        # its own parameter: the program against itself decides nothing about its values
        report.rows.append(row(f"{label} (symmetry)", trial, "symmetry", got, np.transpose(got), rtol=1e-10,
                               floor=rounding_floor(np.float64, got), detail="H = Hᵀ"))
    exact_dims = {s: 2 for s in dims}
    if exact_proof or (exact_proof is None and np.prod(shape_at(X, exact_dims)) <= EXACT_ENTRIES):
        report.rows.append(_exact_second(spec, exact_dims, rng))
        report.notes.append("exact proof at sizes " + ", ".join(f"{k} = 2" for k in sorted(map(str, exact_dims)))
                            if exact_dims else "exact proof at the function's own sizes")
    return report


def _exact_second(spec, dims, rng):
    """One row: the derived result written out entry by entry at `dims`, with the variable as symbols and the other
    inputs as random rationals, against SymPy's second derivatives of f written out the same way."""
    X, V = spec["wrt"], spec["direction"]
    env, values = {}, {}
    for a in spec["arguments"]:
        if a == X:
            env[a.name] = exact.symbol_matrix(a.name.lower() + "_", *shape_at(a, dims)) if a.is_Matrix else a
        elif a.is_Matrix:
            shape = shape_at(a, dims)
            sample = rng.integers(-4, 5, size=shape) / 4 + (3 * np.eye(shape[0]) if shape[0] == shape[1] else 0)
            env[a.name] = sp.ImmutableMatrix(sp.Matrix(shape[0], shape[1], lambda i, j: sp.Rational(sample[i, j])))
        else:
            values[a] = sp.Rational(int(rng.integers(1, 5)), 4)
    for Z, E in spec["where"]:
        env[Z.name] = exact.explicit(E, env, dims).xreplace(values)
    f = exact.explicit(spec["f"], env, dims).xreplace(values)
    f = f[0, 0] if isinstance(f, sp.MatrixBase) else f
    result = exact.explicit(spec["result"], env, dims).xreplace(values)
    x = env[X.name] if X.is_Matrix else sp.Matrix([[X]])
    flat = [x[i, j] for j in range(x.cols) for i in range(x.rows)]   # column-major vec
    H = sp.Matrix(len(flat), len(flat), lambda p, q: sp.diff(f, flat[p], flat[q]))
    if spec["symmetric"]:
        # P H P, P = (I + K)/2 the projection onto vec of symmetric matrices
        r = x.rows
        P = sp.Matrix(r * r, r * r, lambda p, q: (sp.KroneckerDelta(p, q) + sp.KroneckerDelta(q, (p % r) * r + p // r)) / 2)
        H = P * H * P
    if spec["kind"] == "hvp":
        v = env[V.name] if V.is_Matrix else sp.Matrix([[values.get(V, V)]])
        expected = H * sp.Matrix([v[i, j] for j in range(v.cols) for i in range(v.rows)])
        result = sp.Matrix([result[i, j] for j in range(result.cols) for i in range(result.rows)]) \
            if isinstance(result, sp.MatrixBase) else sp.Matrix([[result]])
    else:
        expected, result = H, result if isinstance(result, sp.MatrixBase) else sp.Matrix([[result]])
    wrong = next((k for k in np.ndindex(expected.shape) if not exact.is_zero(result[k] - expected[k])), None)
    detail = "equal as expressions" if wrong is None else f"entry {wrong} differs"
    label = ("H v" if spec["kind"] == "hvp" else "H") + f" of {X} (formula)"   # the formula, not the program
    return Row(label, "-", "exact (SymPy diff²)", 0.0, 0.0, wrong is None, detail)


def _vec(M):
    return np.reshape(np.transpose(np.atleast_2d(M)), (-1,)) if np.ndim(M) else np.atleast_1d(M)


def _unit(x, k):
    """The k-th unit direction of x's shape in column-major order."""
    e = np.zeros(np.size(x))
    e[k] = 1.0
    return np.reshape(e, np.shape(x)[::-1]).T if np.ndim(x) == 2 else np.reshape(e, np.shape(x))


def exact_product_rows(result, seed=0):
    """One row per parameter: the derived Hessian-vector product (the backprop's forward and δ lines and its R
    pass, written out entry by entry at width 2) against SymPy's ∂/∂θ_i of ∇L · v, v random rationals, with
    L verify's own explicit loss."""
    from . import exact

    plain = result.specification()
    model = reference(plain)
    dims = model.exact_dimensions(1)   # one sample: second derivatives of the loss swell fast
    env, names, loss, constants = model.explicit(dims)
    params = {k: env[k] for k in names}
    rng = np.random.default_rng(seed)
    V = {k: sp.ImmutableMatrix(*P.shape, [sp.Rational(int(rng.integers(-3, 4)), 2) for _ in range(len(P))])
         for k, P in params.items()}
    values = {**env, **{f"V_{k}": v for k, v in V.items()}}
    for name, E in [*plain["forward"], *plain["deltas"]]:
        values[name] = exact.explicit(constants(E), values, dims)
    statements, outputs = result.r_statements("hvp")
    # the code reads a relu's mask off A (H(A) = H(Z) in floating point); written out, H(max(0, z)) is H(0) = 1/2 at
    # z < 0, so the proof reads it off Z, as the derivation does
    unmask = {A: Z for Z, A in result._masks().items()}
    for R, E in statements:
        values[R.name] = exact.explicit(constants(E.xreplace(unmask)), values, dims)
    gv = sum(sp.diff(loss, P[idx]) * V[k][idx] for k, P in params.items() for idx in np.ndindex(P.shape))
    rows = []
    for name, E in outputs.items():
        got = exact.explicit(constants(E.xreplace(unmask)), values, dims)
        wrong = next((idx for idx in np.ndindex(got.shape)
                      if not exact.is_zero(got[idx] - sp.diff(gv, params[name][idx]))), None)
        rows.append(Row(name, "-", "exact (SymPy diff²)", 0.0, 0.0, wrong is None,
                        "equal as expressions" if wrong is None else f"entry {wrong} differs"))
    return rows
