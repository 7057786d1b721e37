"""The functions generated code calls, defined here as code (tested, linted) and copied into every generated
source by their text: a generated module imports nothing from derive."""
import functools
import inspect


def namespace(*arrays):
    """The array library of the inputs, as an array API namespace (array_api_compat when installed); None when none
    is an array (check_shapes then names the argument)."""
    arrays = [a for a in arrays if hasattr(a, "shape")]   # a number, None or a list is refused by check_shapes
    if not arrays:
        return None
    try:
        from array_api_compat import array_namespace
    except ImportError:
        return arrays[0].__array_namespace__()
    # arrays of one type are of one library: the namespace is looked up once
    return array_namespace(*(arrays[:1] if len({type(a) for a in arrays}) == 1 else arrays))


def device_of(x):
    """The device x lives on (CPU, a GPU, …): arrays the code makes are made there."""
    try:
        from array_api_compat import device
    except ImportError:
        return getattr(x, "device", None)
    return device(x)


def check_shapes(xp, arrays, expected, sizes, given=()):
    """(sizes, arrays): the named sizes read off the arrays' shapes (or `given` as arguments), and the arrays, those
    of integers made floating; an argument of another rank, shape or type is an error that names it, with the shape
    expected and the shape given."""
    bound, floating, integers = dict(given), (xp.float64, xp.float32) if xp else (), False
    for want, (value, source) in bound.items():
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"{source}: the size {want} must be an integer, got {type(value).__name__} {value!r}")
    arrays, hot = list(arrays), {}
    for k, (a, (name, shape, *axis)) in enumerate(zip(arrays, expected)):
        if not shape:
            _scalar(a, name)
            continue
        if axis:   # a one-hot input: given as the index of each sample's 1, or one-hot; checked as indices
            arrays[k], shape = _indices(xp, a, name, shape, axis[0]), (shape[1 - axis[0]],)
            hot[k] = (name, expected[k][1][axis[0]])   # its name, the vocabulary's size
            a = arrays[k]
        actual = getattr(a, "shape", None)
        if actual is None or len(actual) != len(shape) or type(a).__name__ == "matrix" or not (
                a.dtype == floating[0] or a.dtype == floating[1]):
            integers |= _refuse(xp, a, name, shape)
        for want, got in zip(shape, actual):
            if want.__class__ is str:
                if want not in bound:
                    if got is None or got != got:
                        continue  # a size not known yet (a lazy array's)
                    bound[want] = (got, name)
                value, source = bound[want]
            else:
                value, source = want, name
            if got != value and got is not None and got == got:
                where = f" with {want} = {value} from {source}" if source != name else ""
                raise ValueError(f"{name}: expected shape {_shape(shape)}{where}, got {tuple(actual)}")
    for want, (value, name) in bound.items():
        if value < 1:
            raise ValueError(f"{name}: size {want} = {value}; every size must be at least 1")
    if len(bound) < len(sizes):
        missing = [k for k in sizes if k not in bound]
        raise ValueError(f"the sizes {', '.join(missing)} are unknown (arrays of unknown shape)")
    for k, (name, vocabulary) in hot.items():   # every index inside the vocabulary
        n = bound[vocabulary][0] if vocabulary.__class__ is str else vocabulary
        try:
            low, high = (int(xp.min(arrays[k])), int(xp.max(arrays[k]))) if arrays[k].shape[0] else (0, 0)
        except TypeError:   # a traced array (under jax.jit): its values are not known here
            continue
        if low < 0 or high >= n:
            raise ValueError(f"{name}: indices must lie in 0 … {n - 1} (the vocabulary), got {low} … {high}")
    if integers:  # integer arrays computed in a floating type: X @ X of int8 overflows
        dtype = xp.result_type(*(a for k, (a, (_, shape, *_)) in enumerate(zip(arrays, expected))
                                 if shape and k not in hot), xp.float32)
        arrays = [xp.astype(a, dtype) if shape and k not in hot and not xp.isdtype(a.dtype, "real floating")
                  else a for k, (a, (_, shape, *_)) in enumerate(zip(arrays, expected))]
    return tuple(bound[k][0] for k in sizes), tuple(arrays)


def _indices(xp, a, name, shape, axis):
    """A one-hot input as the index of each sample's 1, 64-bit (index arithmetic in uint8 would wrap): a 1-D integer
    array, or a 2-D one-hot array (of the shape `shape`, each sample's entries 0 but a single 1) by its argmax along
    the vocabulary axis."""
    if hasattr(a, "shape") and len(a.shape) == 1 and xp.isdtype(a.dtype, "integral"):
        return xp.astype(a, xp.int64)
    if not hasattr(a, "shape") or len(a.shape) != 2:
        raise TypeError(f"{name}: expected the index of each sample's token (a 1-D integer array) or a one-hot array "
                        f"of shape {_shape(shape)}, got {type(a).__name__} {tuple(getattr(a, 'shape', ()))}")
    ones = xp.sum(xp.astype(a == 1, xp.int64), axis=axis)
    try:
        one_hot = bool(xp.all((ones == 1) & (xp.sum(xp.astype(a != 0, xp.int64), axis=axis) == 1)))
    except TypeError:   # a traced array (under jax.jit): its values are not known here
        one_hot = True
    if not one_hot:
        raise ValueError(f"{name}: a one-hot array needs a single 1 and zeros elsewhere for each sample")
    return xp.astype(xp.argmax(a, axis=axis), xp.int64)


def _refuse(xp, a, name, shape):
    """True for an array of integers; an error for anything else that is not an array of real floating type and
    shape."""
    if not hasattr(a, "shape"):
        raise TypeError(f"{name}: expected a {len(shape)}-D array of shape {_shape(shape)}, got {type(a).__name__} "
                        f"{a!r:.40}")
    if type(a).__name__ == "matrix":
        raise TypeError(f"{name}: numpy.matrix is not supported (its * is the matrix product); "
                        f"pass numpy.asarray({name})")
    if len(a.shape) != len(shape):
        raise ValueError(f"{name}: expected a {len(shape)}-D array of shape {_shape(shape)}, "
                         f"got shape {tuple(a.shape)}")
    if xp.isdtype(a.dtype, "real floating"):
        return False
    if xp.isdtype(a.dtype, "integral"):
        return True
    raise TypeError(f"{name}: an array of {a.dtype}; pass real numbers (a floating or integer type)")


def _scalar(a, name):
    """A real number, or a 0-D array of one."""
    if isinstance(a, (bool, complex, str)) or (hasattr(a, "shape") and tuple(a.shape) != ()) or not (
            hasattr(a, "shape") or isinstance(a, (int, float))):
        raise TypeError(f"{name}: expected a real number (or a 0-D array), got {type(a).__name__} "
                        f"{getattr(a, 'shape', '')}".rstrip())


def _shape(shape):
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def scatter_add(xp, m, idx, n, axis):
    """Pᵀ m (axis 0: row i of m added into row idx_i of n zero rows) or m P (axis 1: columns into columns), P the
    one-hot matrix of idx: an embedding's gradient without the one-hot product."""
    shape = (n, m.shape[1]) if axis == 0 else (m.shape[0], n)
    if hasattr(m, "index_add_"):   # PyTorch
        return xp.zeros(shape, dtype=m.dtype, device=device_of(m)).index_add_(axis, idx, m)
    if hasattr(m, "at"):   # JAX
        out = xp.zeros(shape, dtype=m.dtype, device=device_of(m))
        return out.at[idx].add(m) if axis == 0 else out.at[:, idx].add(m)
    if axis == 1:   # M P = (Pᵀ Mᵀ)ᵀ
        return scatter_add(xp, m.T, idx, n, 0).T
    if type(m).__module__ != "numpy":   # a library without a scatter (array_api_strict, Dask): Pᵀ m, P formed
        P = xp.astype(xp.reshape(idx, (-1, 1)) == xp.arange(n, device=device_of(m)), m.dtype)
        return P.T @ m
    import numpy   # NumPy: entry (i, c) of m counted into bin idx_i·k + c, repeated tokens added up
    k = m.shape[1]
    bins = numpy.reshape(numpy.reshape(idx, (-1, 1)) * k + numpy.arange(k), (-1,))
    total = numpy.bincount(bins, weights=numpy.reshape(m, (-1,)), minlength=n * k)
    return total.reshape(n, k).astype(m.dtype, copy=False)


def first_max(xp, j, *taps):
    """1 where taps[j] is the first largest of the taps, entrywise, else 0: above every tap before it, at least
    every tap after it (a max pool's argmax mask, ties to the first)."""
    best, keep = taps[j], None
    for k, t in enumerate(taps):
        if k != j:
            more = best > t if k < j else best >= t
            keep = more if keep is None else keep & more
    return xp.ones_like(best) if keep is None else xp.astype(keep, best.dtype)


def sigmoid(xp, x):
    """1 / (1 + e^(−x)) = e^(min(x, 0)) / (1 + e^(−|x|)): no overflow, full relative precision for every x
    (the tanh form (1 + tanh(x/2)) / 2 loses it below x ≈ −20)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1 + e)


def heaviside(xp, x, at_zero):
    """The step H(x): 0 below 0, 1 above, `at_zero` at 0, in the floating type of x."""
    x = xp.asarray(x)
    dtype = x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float64
    step = xp.astype(x > 0, dtype)
    return step if at_zero == 0 else step + at_zero * xp.astype(x == 0, dtype)


def unit(xp, rows, cols, i, j, dtype, device):
    """E_ij: the rows × cols matrix with a single 1 at (i, j)."""
    r, c = xp.arange(rows, device=device), xp.arange(cols, device=device)
    return xp.astype((xp.reshape(r, (rows, 1)) == i) & (xp.reshape(c, (1, cols)) == j), dtype)


def logdet(xp, x):
    """log det x from slogdet (no overflow of det): nan where det x < 0, as log|det x| would be another function."""
    sign, value = xp.linalg.slogdet(x)
    return xp.where(sign >= 0, value, xp.asarray(float("nan"), dtype=value.dtype, device=device_of(value)))


def adjugate(xp, x):
    """adj(x) = det(x) x⁻¹, finite where x is singular: with x = U diag(s) Vᵀ, adj(x) = det(V) det(Uᵀ) V diag(s̃) Uᵀ,
    s̃_i the product of the other singular values."""
    u, s, vt = xp.linalg.svd(x)
    n = s.shape[0]
    others = xp.stack([xp.prod(s[:i]) * xp.prod(s[i + 1:]) for i in range(n)])
    return xp.linalg.det(u) * xp.linalg.det(vt) * (vt.T * others) @ u.T


def log_softplus(xp, x):
    """log softplus(x) = log log(1 + e^x); below 0 as x + log(log1p(u)/u), u = e^x, which tends to x where
    softplus(x) underflows."""
    u = xp.exp(xp.minimum(x, 0.0))
    ratio = xp.where(u > 0, xp.log1p(u) / xp.where(u > 0, u, 1.0), 1.0)
    above = xp.log(xp.where(x > 0, x + xp.log1p(xp.exp(-xp.abs(x))), 1.0))
    return xp.where(x > 0, above, xp.minimum(x, 0.0) + xp.log(ratio))


def softplus_ratio(xp, x):
    """σ(x) / softplus(x), tending to 1 as x → −∞ where both underflow: below 0, with u = e^x,
    u / ((1 + u) log1p(u))."""
    u = xp.exp(-xp.abs(x))
    below = xp.where(u > 0, u / xp.where(u > 0, xp.log1p(u), 1.0), 1.0) / (1 + u)
    above = 1 / ((1 + u) * (xp.abs(x) + xp.log1p(u)))
    return xp.where(x > 0, above, below)


def softmax(xp, z, axis):
    """exp(z) normalised along axis; the maximum is subtracted first, so exp never overflows."""
    e = xp.exp(z - xp.max(z, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def causal_softmax(xp, z, axis):
    """softmax along axis over the entries up to the diagonal (a causal mask), the others 0: row i > column j is
    masked per column (axis 0), column j > row i per row (axis 1)."""
    i = xp.arange(z.shape[0], device=device_of(z))
    masked = xp.where((i[:, None] > i[None, :]) if axis == 0 else (i[:, None] < i[None, :]), -xp.inf, z)
    e = xp.exp(masked - xp.max(masked, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def log_softmax(xp, z, axis):
    """log softmax(z) along axis = z − max − log Σ exp(z − max), without overflow."""
    shifted = z - xp.max(z, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def take(xp, m, axis, start, count, stride):
    """Rows (axis 0) or columns (axis 1) start, start + stride, … (count of them) of m, zero outside m: padding."""
    m = m if axis == 0 else m.T
    n = m.shape[0]
    index = [start + i * stride for i in range(count)]
    inside = [i for i in index if 0 <= i < n]
    lead = sum(1 for i in index if i < 0)
    parts = [xp.zeros((lead, m.shape[1]), dtype=m.dtype, device=device_of(m))] if lead else []
    if inside:
        parts.append(m[inside[0]:inside[-1] + 1:stride, :])
    trail = count - lead - len(inside)
    if trail:
        parts.append(xp.zeros((trail, m.shape[1]), dtype=m.dtype, device=device_of(m)))
    out = xp.concat(parts, axis=0) if len(parts) > 1 else parts[0]
    return out if axis == 0 else out.T


def put(xp, m, axis, n, start, stride):
    """m's rows (axis 0) or columns (axis 1) at start, start + stride, … of n, zeros elsewhere (those outside 0 … n − 1
    dropped): the transpose of take."""
    m = m if axis == 0 else m.T
    index = [start + i * stride for i in range(m.shape[0])]
    keep = [k for k, i in enumerate(index) if 0 <= i < n]
    cols, device = m.shape[1], device_of(m)
    out = xp.zeros((n, cols), dtype=m.dtype, device=device)
    if keep:
        first, last, rows = index[keep[0]], index[keep[-1]], m[keep[0]:keep[-1] + 1, :]
        try:
            out[first:last + 1:stride, :] = rows   # in place where the library allows it (NumPy, PyTorch, …)
        except TypeError:   # immutable arrays (JAX, also under jit): the same matrix by concatenation
            if stride > 1:   # each row followed by stride − 1 zero rows, the last one's dropped
                gaps = xp.zeros((rows.shape[0], stride - 1, cols), dtype=m.dtype, device=device)
                spread = xp.concat([xp.expand_dims(rows, axis=1), gaps], axis=1)
                rows = xp.reshape(spread, (rows.shape[0] * stride, cols))[:last - first + 1, :]
            out = xp.concat([out[:first, :], rows, out[last + 1:, :]], axis=0)
    return out if axis == 0 else out.T


def selection(xp, n, start, count, stride, dtype, device):
    """The count × n selection matrix itself (where no neighbouring factor takes it as a slice)."""
    rows = xp.arange(count, device=device)[:, None] * stride + start
    return xp.astype(rows == xp.arange(n, device=device)[None, :], dtype)


def nonsingular_solve(xp, m, b, name):
    """m⁻¹ b by a solve (m⁻¹ itself for b None), refusing by name an m singular to working precision (its smallest
    singular value below the largest times 10⁴ ε of its type): the result scales m⁻¹ by det m, finite in the limit
    but not computable this way."""
    s = xp.linalg.svdvals(m)
    if not bool(s[-1] > s[0] * 1e4 * xp.finfo(m.dtype).eps):
        raise ValueError(f"{name} is singular to working precision (singular values {float(s[0]):.3g} … "
                         f"{float(s[-1]):.3g}): the result is written with its inverse scaled by its determinant, "
                         f"which this code cannot evaluate there")
    return xp.linalg.inv(m) if b is None else xp.linalg.solve(m, b)


def kron(xp, a, b):
    """a ⊗ b: block (i, j) is a_ij b."""
    (p, q), (r, s) = a.shape, b.shape
    return xp.reshape(a[:, None, :, None] * b[None, :, None, :], (p * r, q * s))


def commutation(xp, rows, cols, dtype, device):
    """K: the (rows·cols)² permutation matrix with K vec(a) = vec(aᵀ) for a rows × cols, column-major vec (row
    i·cols + j of K is row j·rows + i of the identity)."""
    eye = xp.eye(rows * cols, dtype=dtype, device=device)
    return xp.reshape(xp.permute_dims(xp.reshape(eye, (cols, rows, rows * cols)), (1, 0, 2)), (rows * cols, rows * cols))


def diag(xp, v):
    """diag(v) for a column v (the printer passes a row transposed)."""
    return xp.eye(v.shape[0], dtype=v.dtype, device=device_of(v)) * v.T


CHECKS = (check_shapes, _refuse, _scalar, _shape)
HELPERS = {f.__name__: f for f in (_indices, scatter_add, first_max,
                                   sigmoid, heaviside, unit, logdet, adjugate, log_softplus, softplus_ratio, softmax,
                                   causal_softmax, log_softmax, take, put, selection, kron, commutation, diag,
                                   nonsingular_solve)}
NAMES = {"namespace", "device_of", *(f.__name__ for f in CHECKS), *HELPERS}  # every name the helpers take in generated code


@functools.cache
def source(*functions):
    """The source text of the functions, each followed by two blank lines but the last."""
    return "\n\n".join(inspect.getsource(f) for f in functions)
