"""The `derive` command: examples, mlp, run, expr, check, exercises, operators. Exit codes: 0 success, 1 verification failed, 2 usage error."""
import argparse
import os
import re
import sys
from pathlib import Path

from ..codegen.program import listing
from ..core.parser import parse, parse_shape
from ..core.registry import ACTIVATIONS, LOSSES
from ..documents import write
from ..documents.blocks import SECTIONS, network_title
from ..documents.tex import PAPERS
from ..engine.derivation import DETAILS, derivation
from ..engine.second import hessian_derivation
from ..errors import ParseError, UsageError
from ..networks.backprop import backprop
from ..networks.network import mlp
from ..printing.latex import Notation, latex
from . import check, demo, exercises, progress
from .spec import SPEC_KEYS, _blocks_network, _is_size, _read_spec, _size, choices
from .examples import EXAMPLES

EXAMPLES_HELP = """examples:
  derive examples
  derive run spec.toml
  derive mlp 784 128 10 --activation relu --output softmax --loss softmax_ce --layout AW --name mnist
  derive expr "tr(A*X*B)" --wrt X --shape A=3x3 --shape B=3x3 --shape X=3x3"""


MAX_TRIALS = 1000
MAX_ENTRIES = 10**6  # derive expr checks numerically when the inputs have at most this many entries
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Help with each option's default (an option without one says what happens when it is not given), and the
    examples as they are written."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (exit 2), not the usage screen."""

    def error(self, message):
        raise UsageError(message)


def _folder(out, name=None):
    """out/name: `name` one plain path component (no /, .., NUL), `out` a folder or nothing yet."""
    if name is not None and (not SAFE_NAME.fullmatch(name) or ".." in name):
        raise UsageError(f"name {name!r}: a name is letters, digits, '.', '_' and '-' (at most 100, no '..'); "
                    f"files are written only inside the output folder")
    out = Path(out)
    if "\0" in str(out):
        raise UsageError("--out: a path with a NUL byte")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder")
    return _target(out / name) if name is not None else out


def _no_link(path):
    if path.is_symlink():
        raise UsageError(f"{path} is a symbolic link: files are written only inside the output folder; remove it")


def _target(folder):
    """A folder to write files into: not a file, and neither it nor anything in it a symbolic link (which a write
    would follow out of the output folder)."""
    _no_link(folder)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file, not a folder: remove it or choose another name")
    for path in folder.iterdir() if folder.is_dir() else ():
        _no_link(path)
    return folder


def _number(value):
    """A float option's value: a finite number."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{value!r} is not a finite number")
    return value


def _count(value):
    """An integer option's value: a whole number."""
    if not re.fullmatch(r"[0-9]+", value.strip()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number")
    return int(value)


def _size_option(value):
    """A size option's value: a positive integer or a name."""
    if not _is_size(int(value) if re.fullmatch(r"[0-9]+", value) else value):
        raise argparse.ArgumentTypeError(f"{value!r} is neither a positive integer nor a name")
    return value


def _trials(n):
    if not 1 <= n <= MAX_TRIALS:
        raise UsageError(f"--trials {n}: must be between 1 and {MAX_TRIALS}")
    return n


def _examples(args):
    out = _folder(args.out)
    for name in (*EXAMPLES, "identities"):
        _target(out / name)
    _no_link(out / "README.md")
    demo.main(out, pdf=not args.no_pdf, detail=args.detail, paper=args.paper)
    return 0


def _document_options(p, network=False):
    p.add_argument("--detail", default="textbook", choices=DETAILS,
                   help="textbook: one chain per layer; full: every rule applied")
    p.add_argument("--paper", default="a4", choices=PAPERS, help="the PDF's paper size")
    if network:
        p.add_argument("--sections", type=_sections, default=None, metavar="LIST",
                       help=f"the document's optional sections, comma-separated from {', '.join(SECTIONS)} "
                            f"(empty: none; default: both for dense layers, none for other blocks)")


def _sections(value):
    """--sections index,algorithm as a tuple of known section names."""
    names = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section {unknown[0]!r}; choices: {', '.join(SECTIONS)}")
    return names


def _mlp(args):
    if args.loss == "softmax_ce" and args.output not in (None, "softmax"):
        raise UsageError(f"--loss softmax_ce is the cross-entropy of a softmax output: give --output softmax (or leave "
                         f"it out), not --output {args.output}; for {args.output} outputs use --loss bce or half_sse")
    try:
        net = mlp([_size(str(s)) for s in args.sizes], activation=args.activation, output=args.output, loss=args.loss,
                  bias=not args.no_bias, layout=args.layout, reduction=args.reduction,
                  weight_decay=float(args.weight_decay), samples=_size(args.samples))
    except ValueError as e:
        raise UsageError(str(e)) from None
    return _network_job(args, net)


def _network_job(args, net):
    """Derive, write and verify a network into the folder args.out/args.name: written whole, in a new folder beside
    it that replaces it at the end, or not at all (an earlier run's files stay as they were)."""
    import verify

    folder, trials = _folder(args.out, args.name), _trials(args.trials)
    step = progress.steps(quiet=getattr(args, "quiet", False))
    with step("deriving"):
        result = backprop(net)
    title = getattr(args, "title", None) or network_title(net)   # the spec's title, or the network in words
    with progress.replacing(folder) as new:
        with step("writing the documents"):
            written = write(result, new, title=title, notation=getattr(args, "notation", None), pdf=not args.no_pdf,
                            detail=args.detail, paper=args.paper, sections=getattr(args, "sections", None))
        with step("verifying"):
            report = verify.check(result, trials=trials)
        (new / "verification.txt").write_text(str(report) + "\n", encoding="utf-8")
        (new / "verification.json").write_text(report.to_json() + "\n", encoding="utf-8")
        written = [folder / Path(p).name for p in written] + [folder / "verification.txt", folder / "verification.json"]
    print(result)
    print(f"verification: {'PASSED' if report.passed else 'FAILED'} "
          f"({len(report.rows)} checks: {'recursion' if net.dense_chain() else 'reference'}, finite differences"
          f"{', exact proof' if any(r.check.startswith('exact') for r in report.rows) else ''})")
    print(f"wrote {', '.join(map(str, written))}")
    return 0 if report.passed else 1



def _run(args):
    spec = _read_spec(args.spec)
    notation = spec.pop("notation", {})
    if "layers" in spec:
        return _blocks_run(args, spec, notation)
    argv = ["mlp", *map(str, spec["sizes"]), "--name", spec.get("name", Path(args.spec).stem), "--out", args.out]
    for key in ("output", "loss", "layout", "reduction", "weight_decay", "samples", "trials"):
        if key in spec:
            argv += [f"--{key.replace('_', '-')}", str(spec[key])]
    if not spec.get("bias", True):
        argv.append("--no-bias")
    if args.no_pdf:
        argv.append("--no-pdf")
    if args.quiet:
        argv.append("--quiet")
    argv += ["--detail", args.detail, "--paper", args.paper]
    if args.sections is not None:
        argv += ["--sections", ",".join(args.sections)]
    mlp_args = parser().parse_args(argv)
    mlp_args.activation = spec.get("activation", "sigmoid")
    mlp_args.title = spec.get("title")
    try:
        mlp_args.notation = Notation(**notation)
    except ValueError as e:
        raise UsageError(f"spec: {e}") from None
    return _mlp(mlp_args)


def _blocks_run(args, spec, notation):
    """derive run for a spec with [[layers]]: the network of blocks, derived, written and verified."""
    net = _blocks_network(spec)
    try:
        notation = Notation(**notation)
    except ValueError as e:
        raise UsageError(f"spec: {e}") from None
    job = argparse.Namespace(out=args.out, name=spec.get("name", Path(args.spec).stem), title=spec.get("title"),
                             trials=spec.get("trials", 2),
                             notation=notation, no_pdf=args.no_pdf, detail=args.detail, paper=args.paper,
                             quiet=args.quiet,
                             sections=args.sections)
    return _network_job(job, net)


def _expr(args):
    try:
        pairs = [parse_shape(s) for s in args.shape]
    except ValueError as e:
        raise UsageError(str(e)) from None
    shapes = dict(pairs)
    if len(shapes) < len(pairs):
        twice = next(name for name, _ in pairs if sum(n == name for n, _ in pairs) > 1)
        raise UsageError(f"--shape {twice}= given more than once: give each symbol's shape once")
    try:
        f = parse(args.expression, shapes)
    except ParseError as e:
        raise UsageError(f"cannot parse the expression: {e}") from None
    if args.wrt not in shapes:
        raise UsageError(f"--wrt {args.wrt}: not among the declared symbols ({', '.join(shapes)})")
    X = parse(args.wrt, {args.wrt: shapes[args.wrt]})
    try:
        d = (hessian_derivation if args.hessian else derivation)(f, X)
    except ValueError as e:
        raise UsageError(str(e)) from None
    print(d)
    print(f"LaTeX: \\frac{{\\partial f}}{{\\partial {latex(X)}}} = {latex(d.gradient)}")
    print("code:\n" + listing(d.program()).rstrip())
    passed = True
    symbolic = [k for k, v in shapes.items() if v is not None and not all(n.isdigit() for n in v)]
    entries = sum(int(r) * int(c) for k, (r, c) in shapes.items() if k not in symbolic and (r, c) != (None, None))
    if symbolic:
        print(f"numeric check skipped: {', '.join(symbolic)} of symbolic size (give integer sizes to check)")
    elif entries > MAX_ENTRIES:
        print(f"numeric check skipped: {entries} entries in all (checked up to {MAX_ENTRIES})")
    else:
        import verify
        report = verify.check(d, trials=1)
        passed = report.passed
        if not report.rows:  # nothing could be checked: not a failed verification
            print("numeric check skipped: " + "; ".join(report.notes))
            passed = True
        for row in report.rows:
            print(f"numeric check against {row.check}: relative error {row.max_rel:.2e} "
                  f"({'PASSED' if row.passed else 'FAILED'})")
    if args.out:
        written = write(d, _folder(args.out), pdf=not args.no_pdf, detail=args.detail, paper=args.paper)
        print(f"wrote {', '.join(map(str, written))}")
    return 0 if passed else 1


def _operators(args):
    """The operator table: each operator with its differential rule and transpose identity; then what has no rule,
    the registered activations and losses."""
    from ..core import rules
    from ..printing.text import text

    print("operators: the differential rule, and the identities that move the operator onto the adjoint")
    for op in rules.OPERATORS.values():
        lhs, rhs = op.differential.form()
        moved = ", ".join(rule.name for rule in op.identities)
        print(f"  {op.node.__name__:<26} {op.differential.name:<22} {text(lhs)} = {text(rhs)}"
              + (f"   [{moved}]" if moved else ""))
    print("not supported:")
    for name, why in rules.unsupported():
        print(f"  {name:<26} {why}")
    print(f"activations: {', '.join(ACTIVATIONS)}")
    print(f"losses: {', '.join(LOSSES)}")
    return 0


def parser():
    from .. import __version__

    top = Parser(prog="derive", description="Derive and verify gradients in matrix form.",
                 epilog=EXAMPLES_HELP, formatter_class=Formatter)
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    top.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = top.add_subparsers(dest="command", required=True, parser_class=Parser, help="what to do")
    ex = sub.add_parser("examples", help="every seed example into output/", epilog="example: derive examples",
                        formatter_class=Formatter)
    ex.add_argument("--out", default="output", help="the folder to write into")
    _document_options(ex)
    ex.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")
    ex.set_defaults(run=_examples)
    m = sub.add_parser("mlp", help="derive, write and verify the backprop of an MLP", formatter_class=Formatter,
                       epilog="example: derive mlp 784 128 10 --activation relu --output softmax "
                              "--loss softmax_ce --layout AW --name mnist")
    m.add_argument("sizes", nargs="+", type=_size_option, help="layer sizes n0 n1 … nL (integers or names)")
    valid = choices()
    m.add_argument("--activation", default="sigmoid", choices=valid["activation"], help="the hidden layers' activation")
    m.add_argument("--output", default=None, choices=valid["output"],
                   help="the output layer's activation; not given: softmax under softmax_ce, else the hidden one")
    m.add_argument("--loss", default="half_sse", choices=valid["loss"], help="the loss")
    m.add_argument("--layout", default="WA", choices=valid["layout"],
                   help="WA: Z = W A, one sample per column; AW: Z = A W, one per row; WtA: Z = Wᵀ A")
    m.add_argument("--reduction", default="mean", choices=valid["reduction"], help="the loss over the samples")
    m.add_argument("--weight-decay", default="0", type=_number, help="λ of the term (λ/2) Σ ‖W‖²")
    m.add_argument("--samples", default="m", type=_size_option, help="number of samples m (an integer or a name)")
    m.add_argument("--no-bias", action="store_true", help="layers without biases")
    _job_options(m)
    _document_options(m, network=True)
    m.set_defaults(run=_mlp)
    r = sub.add_parser("run", help="the same as mlp, from a TOML spec file", formatter_class=Formatter,
                       epilog="example: derive run spec.toml   (keys: " + ", ".join(SPEC_KEYS) + ")")
    r.add_argument("spec", help="the TOML file")
    r.add_argument("--out", default="output", help="the folder to write into (a folder per network in it)")
    r.add_argument("--quiet", action="store_true", help="no progress on the terminal")
    _document_options(r, network=True)
    r.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")
    r.set_defaults(run=_run)
    check.add_parser(sub, Formatter, _count)
    exercises.add_parser(sub, Formatter, _count, _document_options, _folder)
    o = sub.add_parser("operators", help="the operators the engine differentiates, with their rules, and those it "
                                         "does not", formatter_class=Formatter)
    o.set_defaults(run=_operators)
    e = sub.add_parser("expr", help="the gradient of a scalar expression, with its derivation", formatter_class=Formatter,
                       epilog='example: derive expr "tr(A*X*B)" --wrt X --shape A=3x3 --shape B=3x3 --shape X=3x3')
    e.add_argument("expression", help="the scalar function, e.g. \"tr(A*X*B)\" (parsed, never evaluated)")
    e.add_argument("--wrt", required=True, help="the variable to differentiate by")
    e.add_argument("--shape", action="append", default=[], help="NAME=ROWSxCOLS (n×n for symbolic sizes), once "
                                                                 "per symbol")
    e.add_argument("--out", default=None, help="folder for derivation.tex/.html (default: print only)")
    e.add_argument("--hessian", action="store_true", help="the Hessian and its derivation, not the gradient")
    _document_options(e)
    e.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")
    e.set_defaults(run=_expr)
    return top


def _job_options(p):
    """The options of a job that writes and verifies one network."""
    p.add_argument("--trials", type=_count, default=2, help="random points the verification checks")
    p.add_argument("--name", default="network", help="the folder's name under --out")
    p.add_argument("--out", default="output", help="the folder to write into")
    p.add_argument("--quiet", action="store_true", help="no progress on the terminal")
    p.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")


def main(argv=None):
    """Run the command; exit 0 on success, 1 when a verification fails, 2 on any error (one line on stderr)."""
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(argv)
        return args.run(args)
    except UsageError as e:
        print(f"derive: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:   # the reader closed the pipe (derive operators | head): nothing more to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())   # Python's own flush at exit would fail again
        return 0
    except (Exception, RecursionError) as e:  # one clear line, unless --debug
        if debug:
            raise
        message = " ".join(str(e).split()) or "no message"
        print(f"derive: {type(e).__name__}: {message[:500]}", file=sys.stderr)
        return 2
