"""The `derive` command: examples, mlp, expr. Exit codes: 0 success, 1 verification failed, 2 usage error."""
import argparse
import sys
from pathlib import Path

import numpy as np

from . import demo
from .api import derivation
from .backprop import backprop
from .document import write
from .latex import Notation, latex
from .network import ACTIVATIONS, LAYOUTS, LOSSES, REDUCTIONS, mlp
from .parser import ParseError, parse, parse_shape

EXAMPLES_HELP = """examples:
  derive examples
  derive run spec.toml
  derive mlp 784 128 10 --activation relu --output softmax --loss softmax_ce --layout AW --name mnist
  derive expr "tr(A*X*B)" --wrt X --shape A=3x3 --shape B=3x3 --shape X=3x3"""


class Usage(Exception):
    """A usage error: exit code 2."""


def _examples(args):
    demo.main(args.out, pdf=not args.no_pdf)
    return 0


def _size(s):
    return int(s) if s.isdigit() else s


def _mlp(args):
    import verify

    try:
        net = mlp([_size(str(s)) for s in args.sizes], activation=args.activation, output=args.output, loss=args.loss,
                  bias=not args.no_bias, layout=args.layout, reduction=args.reduction,
                  weight_decay=float(args.weight_decay), samples=_size(args.samples))
    except ValueError as e:
        raise Usage(str(e)) from None
    result = backprop(net)
    folder = Path(args.out) / args.name
    written = write(result, folder, title=f"{args.name}: {net!r}", notation=getattr(args, "notation", None),
                    pdf=not args.no_pdf)
    report = verify.check(result, trials=args.trials)
    (folder / "verification.txt").write_text(str(report) + "\n", encoding="utf-8")
    (folder / "verification.json").write_text(report.to_json() + "\n", encoding="utf-8")
    print(result)
    print(f"verification: {'PASSED' if report.passed else 'FAILED'} "
          f"({len(report.rows)} checks: recursion, finite differences"
          f"{', exact proof' if any(r.check.startswith('exact') for r in report.rows) else ''})")
    print(f"wrote {', '.join(str(p) for p in [*written, folder / 'verification.txt', folder / 'verification.json'])}")
    return 0 if report.passed else 1


SPEC_KEYS = {
    "name": str, "sizes": list, "activation": (str, list), "output": str, "loss": str, "layout": str,
    "reduction": str, "weight_decay": (int, float), "bias": bool, "samples": (int, str), "trials": int,
    "notation": dict,
}
NOTATION_KEYS = {"hadamard": str, "transpose": str, "layer": ("superscript", "subscript"), "bold": bool, "names": dict}
CHOICES = {"activation": [a for a in ACTIVATIONS if a != "softmax"], "output": list(ACTIVATIONS),
           "loss": list(LOSSES), "layout": list(LAYOUTS), "reduction": list(REDUCTIONS)}


def _check_spec(spec):
    """Raise Usage naming the key path and the valid choices for an unknown key or a bad value."""
    for key, value in spec.items():
        if key not in SPEC_KEYS:
            raise Usage(f"spec: unknown key {key!r}; valid keys: {', '.join(SPEC_KEYS)}")
        if not isinstance(value, SPEC_KEYS[key]):
            raise Usage(f"spec: {key} = {value!r} has the wrong type")
        values = value if isinstance(value, list) and key == "activation" else [value]
        for v in values:
            if key in CHOICES and v not in CHOICES[key]:
                raise Usage(f"spec: {key} = {v!r} is not valid; choices: {', '.join(CHOICES[key])}")
    for key, value in spec.get("notation", {}).items():
        if key not in NOTATION_KEYS:
            raise Usage(f"spec: unknown key notation.{key}; valid keys: {', '.join(NOTATION_KEYS)}")
        kind = NOTATION_KEYS[key]
        if isinstance(kind, tuple) and value not in kind:
            raise Usage(f"spec: notation.{key} = {value!r} is not valid; choices: {', '.join(kind)}")
        if not isinstance(kind, tuple) and not isinstance(value, kind):
            raise Usage(f"spec: notation.{key} = {value!r} has the wrong type")
    if "sizes" not in spec:
        raise Usage("spec: missing key 'sizes' (layer sizes n0, n1, …, nL)")


def _run(args):
    import tomllib

    try:
        spec = tomllib.loads(Path(args.spec).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise Usage(f"cannot read {args.spec}: {e}") from None
    _check_spec(spec)
    notation = spec.pop("notation", {})
    argv = ["mlp", *map(str, spec["sizes"]), "--name", spec.get("name", Path(args.spec).stem), "--out", args.out]
    for key in ("output", "loss", "layout", "reduction", "weight_decay", "samples", "trials"):
        if key in spec:
            argv += [f"--{key.replace('_', '-')}", str(spec[key])]
    if not spec.get("bias", True):
        argv.append("--no-bias")
    if args.no_pdf:
        argv.append("--no-pdf")
    mlp_args = parser().parse_args(argv)
    mlp_args.activation = spec.get("activation", "sigmoid")
    mlp_args.notation = Notation(**notation)
    return _mlp(mlp_args)


def _expr(args):
    try:
        shapes = dict(parse_shape(s) for s in args.shape)
    except ValueError as e:
        raise Usage(str(e)) from None
    try:
        f = parse(args.expression, shapes)
    except ParseError as e:
        raise Usage(f"cannot parse the expression: {e}") from None
    if args.wrt not in shapes:
        raise Usage(f"--wrt {args.wrt}: not among the declared symbols ({', '.join(shapes)})")
    X = parse(args.wrt, {args.wrt: shapes[args.wrt]})
    try:
        d = derivation(f, X)
    except ValueError as e:
        raise Usage(str(e)) from None
    print(d)
    print(f"LaTeX: \\frac{{\\partial f}}{{\\partial {latex(X)}}} = {latex(d.gradient)}")
    print("code:\n" + d.source().split("\n\n\n")[-1].rstrip())
    concrete = all(all(str(n).isdigit() for n in v) for v in shapes.values() if v is not None)
    passed = True
    if concrete and all(v is not None for v in shapes.values()):
        from verify import central_difference, relative_error
        rng = np.random.default_rng(0)
        matrices = [M for M in d.program()[0] if M.is_Matrix]
        values = {str(M): rng.normal(size=tuple(int(n) for n in M.shape)) + (3 * np.eye(int(M.rows))
                  if M.rows == M.cols else 0) for M in matrices}
        grad = d.numpy()(**values)
        fd = central_difference(d.numpy("value"), values, args.wrt)
        err = relative_error(np.broadcast_to(grad, fd.shape), fd)
        passed = err < 1e-6
        print(f"numeric check against central differences: relative error {err:.2e} "
              f"({'PASSED' if passed else 'FAILED'})")
    if args.out:
        written = write(d, Path(args.out), title=f"d/d{args.wrt} of {args.expression}", pdf=not args.no_pdf)
        print(f"wrote {', '.join(map(str, written))}")
    return 0 if passed else 1


def parser():
    top = argparse.ArgumentParser(prog="derive", description="Derive and verify gradients in matrix form.",
                                  epilog=EXAMPLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("examples", help="every seed example into output/", epilog="example: derive examples",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("--out", default="output")
    ex.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")
    ex.set_defaults(run=_examples)
    m = sub.add_parser("mlp", help="derive, write and verify the backprop of an MLP",
                       epilog="example: derive mlp 784 128 10 --activation relu --output softmax "
                              "--loss softmax_ce --layout AW --name mnist")
    m.add_argument("sizes", nargs="+", help="layer sizes n0 n1 … nL (integers or names)")
    m.add_argument("--activation", default="sigmoid", choices=[a for a in ACTIVATIONS if a != "softmax"])
    m.add_argument("--output", default=None, choices=list(ACTIVATIONS))
    m.add_argument("--loss", default="half_sse", choices=list(LOSSES))
    m.add_argument("--layout", default="WA", choices=LAYOUTS)
    m.add_argument("--reduction", default="mean", choices=REDUCTIONS)
    m.add_argument("--weight-decay", default="0")
    m.add_argument("--samples", default="m", help="number of samples m (an integer or a name)")
    m.add_argument("--no-bias", action="store_true")
    m.add_argument("--trials", type=int, default=2)
    m.add_argument("--name", default="network")
    m.add_argument("--out", default="output")
    m.add_argument("--no-pdf", action="store_true")
    m.set_defaults(run=_mlp)
    r = sub.add_parser("run", help="the same as mlp, from a TOML spec file",
                       epilog="example: derive run spec.toml   (keys: " + ", ".join(SPEC_KEYS) + ")")
    r.add_argument("spec")
    r.add_argument("--out", default="output")
    r.add_argument("--no-pdf", action="store_true")
    r.set_defaults(run=_run)
    e = sub.add_parser("expr", help="the gradient of a scalar expression, with its derivation",
                       epilog='example: derive expr "tr(A*X*B)" --wrt X --shape A=3x3 --shape B=3x3 --shape X=3x3')
    e.add_argument("expression")
    e.add_argument("--wrt", required=True)
    e.add_argument("--shape", action="append", default=[], help="NAME=ROWSxCOLS (n×n for symbolic sizes)")
    e.add_argument("--out", default=None, help="folder for derivation.tex/.html")
    e.add_argument("--no-pdf", action="store_true")
    e.set_defaults(run=_expr)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except Usage as e:
        print(f"derive: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # one clear line, unless --debug
        if args.debug:
            raise
        print(f"derive: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
