"""`derive check`: derivations written by hand checked line by line on a spec's network or an expression; a folder of
answers graded into a CSV of one row per file."""
import csv
import io
from pathlib import Path

from ..core.parser import parse_shape
from ..errors import UsageError
from .spec import _network_of, _read_spec

KINDS = {".tex": "tex", ".md": "md", ".txt": "txt"}
FIELDS = ("file", "lines_right", "lines", "lines_proved", "first_error", "results_right", "results")


def add_parser(sub, formatter, count):
    """The check subcommand's options."""
    c = sub.add_parser("check", help="check derivations written by hand, line by line (a folder: grade each file)",
                       formatter_class=formatter,
                       epilog="examples:\n  derive check answer.tex --spec net.toml\n"
                              "  derive check answers/ --spec net.toml --csv marks.csv\n"
                              '  derive check steps.txt --expr "tr(A*X*B)" --shape A=3x3 --shape B=3x3 --shape X=3x3')
    c.add_argument("paths", nargs="+", help="derivations (.tex, .md, .txt), or folders of them")
    c.add_argument("--spec", help="the network, as a TOML spec (as for derive run)")
    c.add_argument("--expr", help="the scalar function f, instead of a network (parsed, never evaluated)")
    c.add_argument("--shape", action="append", default=[], help="NAME=ROWSxCOLS for each symbol of --expr")
    c.add_argument("--wrt", help="the variable of --expr whose gradient is the result (default: every one)")
    c.add_argument("--input-layer", type=int, default=0, choices=(0, 1),
                   help="the layer number of the input: 0 (A⁽⁰⁾ = X) or 1 (a⁽¹⁾ = x, as in Ng's notes)")
    c.add_argument("--csv", help="write one row per file: lines right, first error, results right")
    c.add_argument("--trials", type=count, default=3, help="random points each equality is compared at")
    c.add_argument("--seed", type=count, default=0, help="the seed of the random points")
    exact = c.add_mutually_exclusive_group()
    exact.add_argument("--exact", action="store_true", help="prove each right line exactly (SymPy) when grading "
                                                            "several files too")
    exact.add_argument("--no-exact", action="store_true",
                       help="no exact proofs for one file either: each equality decided at the random points only")
    c.set_defaults(run=run)


def _subject(args):
    """The keyword arguments of verify.check_derivation: the spec's network, or the expression."""
    if (args.spec is None) == (args.expr is None):
        raise UsageError("give --spec (a network) or --expr with --shape (an expression), one of them")
    if args.spec is not None:
        spec = _read_spec(args.spec)
        names = {tex.lstrip("\\"): base for base, tex in spec.get("notation", {}).get("names", {}).items()}
        return {"net": _network_of(spec), "names": names, "input_layer": args.input_layer}
    try:
        pairs = [parse_shape(s) for s in args.shape]
    except ValueError as e:
        raise UsageError(str(e)) from None
    return {"f": args.expr, "where": dict(pairs), "wrt": args.wrt}


def _files(paths):
    """Every derivation named: files as given, folders' .tex, .md and .txt files in name order."""
    out = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix in KINDS and p.is_file())
        elif path.is_file():
            out.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    if not out:
        raise UsageError(f"no .tex, .md or .txt files in {', '.join(paths)}")
    return out


def run(args):
    """Check each file; print its report (one line each when there are several); write the CSV; exit 1 when any
    derivation has a wrong line or cannot be read."""
    import verify

    subject = _subject(args)
    files = _files(args.paths)
    if args.csv and Path(args.csv).is_symlink():
        raise UsageError(f"--csv {args.csv} is a symbolic link: remove it")
    if args.trials > 100:
        raise UsageError(f"--trials {args.trials}: at most 100")
    rows, passed = [], True
    exact = args.exact or (len(files) == 1 and not args.no_exact)   # one answer: proved; a folder: fast
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            report = verify.check_derivation(text, **subject, trials=args.trials, seed=args.seed,
                                             kind=KINDS.get(path.suffix, "auto"), source=str(path),
                                             exact=exact)
        except UnicodeDecodeError:
            row, report = {"file": str(path), "first_error": "not UTF-8 text"}, None
        except verify.WrittenError as e:
            row, report = {"file": str(path), "first_error": f"line {e.line}, column {e.column}: cannot be read: "
                                                             f"{e.reason}"}, None
            if len(files) == 1:
                raise UsageError(f"{path}: {e}") from None
        except ValueError as e:
            raise UsageError(str(e)) from None
        if report is not None:
            row = report.summary()
            passed = passed and report.passed
        else:
            passed = False
        rows.append(row)
        if len(files) == 1 and report is not None:
            print(report)
        else:
            print(_line(row))
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: row.get(k, "") for k in FIELDS} for row in rows)
        Path(args.csv).write_text(buffer.getvalue(), encoding="utf-8")
        print(f"wrote {args.csv}")
    return 0 if passed else 1


def _line(row):
    """One file's grade on one line."""
    if "lines" not in row:
        return f"{row['file']}: {row['first_error']}"
    verdict = "right" if not row["first_error"] else f"first error {row['first_error']}"
    return (f"{row['file']}: {row['lines_right']}/{row['lines']} lines ({row['lines_proved']} proved), "
            f"{row['results_right']}/{row['results']} results right; {verdict}")
