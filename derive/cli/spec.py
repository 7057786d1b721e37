"""Spec files (TOML): their keys checked, each wrong one named with its path and the valid choices; the network they
describe."""
import re
from pathlib import Path

from ..core.registry import ACTIVATIONS, LOSSES
from ..errors import InvalidArgument, UsageError
from ..networks.blocks import BLOCKS, MAX_NESTING, MAX_SIZE, SIZE
from ..networks.network import LAYOUTS, REDUCTIONS, Network, mlp


def _is_size(value):
    """Whether a size given as a spec's TOML value is one: an integer (not a boolean) or a name."""
    return isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and value.isidentifier()


def _size(s):
    if re.fullmatch(r"[0-9]+", s):
        if not 1 <= int(s) <= MAX_SIZE:
            raise InvalidArgument(f"size {s[:20]}{'…' if len(s) > 20 else ''}: must be between 1 and {MAX_SIZE}")
        return int(s)
    return s


SPEC_KEYS = {
    "name": str, "sizes": list, "activation": (str, list), "output": str, "loss": str, "layout": str,
    "reduction": str, "weight_decay": (int, float), "bias": bool, "samples": (int, str), "trials": int,
    "notation": dict, "inputs": (int, str), "layers": list, "title": str,
}


def _bounded(value, bounds, what):
    """value, or a UsageError naming `what` where it is an integer outside the bounds (least, most)."""
    least, most = bounds
    if isinstance(value, int) and not least <= value <= most:
        raise UsageError(f"{what} = {value}: must be between {least} and {most}")
    return value


def _layers(tables, path="layers", depth=1):
    """The blocks of a spec's [[layers]] tables (a residual among them nested `depth` deep); a UsageError naming the
    key path for anything wrong."""
    blocks = []
    for k, table in enumerate(tables):
        where = f"{path}[{k}]"
        if not isinstance(table, dict):
            raise UsageError(f"spec: {where} must be a table ([[{path}]]), got {table!r}")
        kind = table.get("kind")
        if kind not in BLOCKS:
            raise UsageError(f"spec: {where}.kind = {kind!r} is not valid; choices: {', '.join(BLOCKS)}")
        arguments = {a.name: a for a in BLOCKS[kind].arguments()}
        for key, value in table.items():
            if key == "kind":
                continue
            if key not in arguments:
                raise UsageError(f"spec: unknown key {where}.{key} for kind {kind!r}; valid keys: "
                                 f"{', '.join(arguments)}")
            a = arguments[key]
            if not isinstance(value, a.type) or isinstance(value, bool) and a.type is not bool:
                raise UsageError(f"spec: {where}.{key} = {value!r} has the wrong type")
            if a.type is SIZE and not _is_size(value):
                raise UsageError(f"spec: {where}.{key} = {value!r} is neither a positive integer nor a name")
            if a.bounds:
                _bounded(value, a.bounds, f"spec: {where}.{key}")
        missing = [a.name for a in arguments.values() if a.required and a.name not in table]
        if missing:
            raise UsageError(f"spec: {where} (kind {kind!r}) needs {', '.join(missing)}")
        options = {key: value for key, value in table.items() if key != "kind"}
        for key in [a.name for a in arguments.values() if a.type is list and a.name in options]:   # inner blocks
            if depth > MAX_NESTING:
                raise UsageError(f"spec: {where}: blocks nest at most {MAX_NESTING} deep")
            options[key] = _layers(options[key], f"{where}.{key}", depth + 1)
        try:
            blocks.append(BLOCKS[kind](**options))
        except (TypeError, ValueError) as e:
            raise UsageError(f"spec: {where} (kind {kind!r}): {e}") from None
    return blocks


NOTATION_KEYS = {"hadamard": str, "transpose": str, "layer": ("superscript", "subscript"), "bold": bool, "names": dict}


def choices():
    """The valid values of the network options, from the registries (registered activations and losses included)."""
    return {"activation": [name for name, act in ACTIVATIONS.items() if act.elementwise], "output": list(ACTIVATIONS),
            "loss": list(LOSSES), "layout": list(LAYOUTS), "reduction": list(REDUCTIONS)}


def _check_spec(spec):
    """Raise UsageError naming the key path and the valid choices for an unknown key or a bad value."""
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            raise UsageError(f"spec: unknown key {key!r}; valid keys: {', '.join(SPEC_KEYS)}")
        if not isinstance(value, SPEC_KEYS[key]):
            raise UsageError(f"spec: {key} = {value!r} has the wrong type")
        values = value if isinstance(value, list) and key == "activation" else [value]
        for v in values:
            valid = choices().get(key)
            if valid is not None and v not in valid:
                raise UsageError(f"spec: {key} = {v!r} is not valid; choices: {', '.join(valid)}")
    for key, value in spec.get("notation", {}).items():
        if key not in NOTATION_KEYS:
            raise UsageError(f"spec: unknown key notation.{key}; valid keys: {', '.join(NOTATION_KEYS)}")
        kind = NOTATION_KEYS[key]
        if isinstance(kind, tuple) and value not in kind:
            raise UsageError(f"spec: notation.{key} = {value!r} is not valid; choices: {', '.join(kind)}")
        if not isinstance(kind, tuple) and not isinstance(value, kind):
            raise UsageError(f"spec: notation.{key} = {value!r} has the wrong type")
    if "layers" in spec:
        extra = [k for k in ("sizes", "activation", "output", "bias") if k in spec]
        if extra:
            raise UsageError(f"spec: {', '.join(extra)} describe an MLP; with [[layers]] give inputs and each layer")
        if "inputs" not in spec:
            raise UsageError("spec: missing key 'inputs' (the width of the input) for [[layers]]")
        return
    if "inputs" in spec:
        raise UsageError("spec: inputs goes with [[layers]]; an MLP is given by sizes")
    if "sizes" not in spec:
        raise UsageError("spec: missing key 'sizes' (layer sizes n0, n1, …, nL)")
    for key in ("sizes", "samples"):
        for v in (spec[key] if key == "sizes" else [spec.get(key, "m")]):
            if not _is_size(v):
                raise UsageError(f"spec: {key} entry {v!r} is neither a positive integer nor a name")


def _read_spec(path):
    """A spec file's checked contents."""
    import tomllib

    try:
        spec = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: TOML syntax, or text that is not UTF-8
        raise UsageError(f"cannot read {path}: {e}") from None
    _check_spec(spec)
    return spec


def _blocks_network(spec):
    """The Network of a spec with [[layers]]."""
    for key in ("inputs", "samples"):
        value = spec.get(key, "m")
        if not _is_size(value):
            raise UsageError(f"spec: {key} = {value!r} is neither a positive integer nor a name")
        _bounded(value, (1, MAX_SIZE), f"spec: {key}")
    layers = _layers(spec["layers"])
    try:
        return Network(_size(str(spec["inputs"])), layers, loss=spec.get("loss", "half_sse"),
                       layout=spec.get("layout", "WA"), reduction=spec.get("reduction", "mean"),
                       weight_decay=float(spec.get("weight_decay", 0)), samples=_size(str(spec.get("samples", "m"))))
    except ValueError as e:
        raise UsageError(f"spec: {e}") from None


def _network_of(spec):
    """The Network a checked spec describes: [[layers]], or an MLP by its sizes."""
    if "layers" in spec:
        return _blocks_network(spec)
    try:
        return mlp([_size(str(s)) for s in spec["sizes"]], activation=spec.get("activation", "sigmoid"),
                   output=spec.get("output"), loss=spec.get("loss", "half_sse"), bias=spec.get("bias", True),
                   layout=spec.get("layout", "WA"), reduction=spec.get("reduction", "mean"),
                   weight_decay=float(spec.get("weight_decay", 0)), samples=_size(str(spec.get("samples", "m"))))
    except ValueError as e:
        raise UsageError(f"spec: {e}") from None
