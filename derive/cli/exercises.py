"""`derive exercises`: problem sheets with their solutions, drawn from a seed (the same seed, the same files): networks
of every kind the toolkit derives, varied in activations, losses, layouts and sizes."""
import json
import random
from pathlib import Path

from ..core.parser import parse
from ..documents import write, write_problem
from ..documents.blocks import network_title
from ..engine.second import hessian_derivation
from ..networks.backprop import backprop
from ..networks.blocks import Conv1D, Dense, LayerNorm, Recurrent, Residual, SelfAttention
from ..networks.network import LAYOUTS, REDUCTIONS, Network, mlp
from ..printing.text import text as plain

LEVELS = ("scalar", "mlp", "deep", "blocks", "second")
HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")
# (output activation, loss): the pairs a textbook sets
OUTPUTS = (("softmax", "softmax_ce"), ("sigmoid", "bce"), ("identity", "half_sse"), ("sigmoid", "half_sse"),
           ("tanh", "mse"), ("identity", "mse"))
# a function of X (text, the shapes of its symbols) whose Hessian the exercise asks for
HESSIANS = (("tr(X'*A*X)", {"A": ("n", "n"), "X": ("n", "k")}, "X"),
            ("log(det(X))", {"X": ("n", "n")}, "X"),
            ("norm2(A*x - b)", {"A": ("m", "n"), "x": ("n", 1), "b": ("m", 1)}, "x"),
            ("tr(inv(X)*A)", {"A": ("n", "n"), "X": ("n", "n")}, "X"),
            ("sum(exp(A*x))", {"A": ("m", "n"), "x": ("n", 1)}, "x"),
            ("tr(X*A*X')", {"A": ("n", "n"), "X": ("k", "n")}, "X"),
            ("sum(log(sigmoid(A*x)))", {"A": ("m", "n"), "x": ("n", 1)}, "x"))


def _sizes(rng, layers, numbers):
    """Layer sizes: small integers, or the names n0, n1, …"""
    return [rng.randint(2, 6) for _ in range(layers + 1)] if numbers else [f"n{k}" for k in range(layers + 1)]


def _dense(rng, layers, decay):
    """A chain of dense layers, and its spec (TOML) for `derive check`."""
    output, loss = rng.choice(OUTPUTS)
    hidden = [rng.choice(HIDDEN) for _ in range(layers - 1)]
    sizes = _sizes(rng, layers, rng.random() < .5)
    if output in ("softmax",) and isinstance(sizes[-1], int):
        sizes[-1] = max(sizes[-1], 3)
    if output in ("sigmoid",) and loss == "bce" and isinstance(sizes[-1], int):
        sizes[-1] = 1
    options = {"output": output, "loss": loss, "layout": rng.choice(LAYOUTS), "reduction": rng.choice(REDUCTIONS),
               "weight_decay": rng.choice((0, 0.01)) if decay else 0}
    net = mlp(sizes, activation=hidden, **options)
    return net, _spec(sizes=sizes, activation=hidden, **options)


def _scalar(rng):
    """A chain of single units (seed 003's 1-1-1 network), one sample."""
    layers = rng.choice((2, 3))
    output, loss = rng.choice((("sigmoid", "bce"), ("identity", "half_sse"), ("sigmoid", "mse"), ("tanh", "half_sse")))
    hidden = [rng.choice(HIDDEN) for _ in range(layers - 1)]
    net = mlp([1] * (layers + 1), activation=hidden, output=output, loss=loss, samples=1)
    return net, _spec(sizes=[1] * (layers + 1), activation=hidden, output=output, loss=loss, samples=1)


def _spec(**keys):
    """A spec file's TOML: each key = its value (strings, numbers and lists of them are written alike in JSON)."""
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in keys.items())


def _blocks(rng):
    """A network of blocks: a layer norm, a residual, a recurrent layer, a convolution or self-attention."""
    act = rng.choice(("tanh", "relu", "sigmoid"))
    kind = rng.randrange(5)
    if kind == 0:
        return Network("n", [LayerNorm(), Dense("k", rng.choice(("sigmoid", "identity")))], loss="half_sse")
    if kind == 1:
        return Network("n", [Dense("h", act), Residual([Dense("h", act)]), Dense(1, "sigmoid")], loss="bce")
    if kind == 2:
        return Network("n", [Recurrent("n_h", rng.choice((2, 3))), Dense(1, "sigmoid")], loss="bce")
    if kind == 3:
        return Network(2, [Conv1D(rng.choice((2, 3)), rng.choice((2, 3)), activation=act), Dense(1, "identity")],
                       layout="AW", samples=rng.choice((5, 6)))
    return Network("d", [Residual([LayerNorm(), SelfAttention(rng.choice((2, 4)), heads=1)]), Dense("c", "softmax")],
                   loss="softmax_ce", layout="AW")


NETWORK_TASK = (("text", "Derive, by the matrix-differential method (bring "), ("math", r"\mathrm{d}L"),
                ("text", " to the form "), ("math", r"\mathrm{tr}(G^{\top}\mathrm{d}V)"),
                ("text", " and read off "), ("math", r"\partial L / \partial V = G"), ("text", "), the error "),
                ("math", r"\delta^{(l)} = \partial L / \partial Z^{(l)}"),
                ("text", " of every layer and the gradient of L with respect to every parameter. "))
CHECK = (("text", "Write one equality per line, in the notation of this sheet: "),
         ("code", r"\delta^{(l)}, W^{(l)\top}, \odot, \sigma'(Z^{(l)}), \mathbf{1}"),
         ("text", " in LaTeX (or Unicode: δ⁽¹⁾, W⁽²⁾ᵀ, ⊙, σ'(Z⁽¹⁾)); then check it line by line: "),
         ("code", "derive check answer.tex --spec network.toml"), ("text", "."))


def exercise(level, rng):
    """(what, result, the task as text parts, the spec for derive check or None) of one exercise at `level`."""
    if level in ("scalar", "mlp", "deep"):
        net, spec = _scalar(rng) if level == "scalar" else _dense(rng, 2 if level == "mlp" else rng.choice((3, 4)),
                                                                  level == "deep")
        task = NETWORK_TASK + ((("text", "Every quantity is a number: the scalar chain rule suffices. "),)
                               if level == "scalar" else ()) + CHECK
        return network_title(net), backprop(net), task, spec
    if level == "blocks":
        net = _blocks(rng)
        task = (("text", "Derive, by the matrix-differential method, the gradient of L with respect to every "
                         "parameter, through the δ of each named intermediate it needs (from the loss back); where "
                         "several paths meet, that δ is the sum of their contributions."),)
        return network_title(net), backprop(net), task, None
    text, shapes, wrt = rng.choice(HESSIANS)
    f = parse(text, shapes)
    X = parse(wrt, {wrt: shapes[wrt]})
    task = (("text", "Derive the gradient of f with respect to "), ("math", wrt),
            ("text", ", then the Hessian from the second differential: differentiate the gradient again and read "
                     "off the linear map "),
            ("math", r"\mathrm{d}%s \mapsto \mathrm{d}(\partial f / \partial %s)" % (wrt, wrt)),
            ("text", ". Check the gradient step with "),
            ("code", f'derive check answer.txt --expr "{text}" '
                     + " ".join(f"--shape {k}={r}x{c}" for k, (r, c) in shapes.items()) + f" --wrt {wrt}"),
            ("text", "."))
    return f"The Hessian of f = {plain(f)} with respect to {wrt}", hessian_derivation(f, X), task, None


def write_exercises(out, level, count, seed, pdf=True, paper="a4"):
    """exercise-01 … in `out`: problem.tex/.html/.pdf, the solution document in solution/, network.toml for
    derive check; README.md lists them. Returns the paths written."""
    rng = random.Random(f"{level}-{seed}")
    out = Path(out)
    written, index = [], [f"# Exercises: level {level}, seed {seed}", "",
                          "| exercise | what | problem | solution |", "|---|---|---|---|"]
    seen = set()
    for k in range(1, count + 1):
        name = f"exercise-{k:02d}"
        for _ in range(20):   # a set of exercises has no two alike (while the level has more to draw)
            what, result, task, spec = exercise(level, rng)
            if what not in seen:
                break
        seen.add(what)
        folder = out / name
        written += write_problem(result, folder, task, title=f"Exercise {k}: {what}", pdf=pdf, paper=paper)
        written += write(result, folder / "solution", title=f"Solution to exercise {k}: {what}", pdf=pdf,
                         paper=paper)
        if spec is not None:
            (folder / "network.toml").write_text(spec, encoding="utf-8")
            written.append(folder / "network.toml")
        index.append(f"| {k} | {what.replace('|', '&#124;')} | [{name}/problem.html]({name}/problem.html) | "
                     f"[{name}/solution/derivation.html]({name}/solution/derivation.html) |")
    (out / "README.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    return [*written, out / "README.md"]


def add_parser(sub, formatter, count, document_options, folder):
    """The exercises subcommand's options."""
    e = sub.add_parser("exercises", help="problem sheets with their solutions (PDF, HTML), drawn from a seed",
                       formatter_class=formatter,
                       epilog="example: derive exercises --count 10 --seed 1 --level mlp --out sheets")
    e.add_argument("--count", type=count, default=5, help="how many exercises (1 to 100)")
    e.add_argument("--seed", type=count, default=0, help="the same seed gives the same exercises")
    e.add_argument("--level", default="mlp", choices=LEVELS,
                   help="scalar: single units; mlp: two dense layers; deep: three or four, weight decay; blocks: "
                        "layer norm, residual, recurrent, convolution, attention; second: a Hessian")
    e.add_argument("--out", default="exercises", help="the folder to write into")
    e.add_argument("--no-pdf", action="store_true", help="do not run pdflatex")
    document_options(e)
    e.set_defaults(run=lambda args: run(args, folder))


def run(args, folder):
    """Write the exercises into a new folder beside --out that replaces it at the end (or leaves it as it was)."""
    from ..errors import UsageError
    from . import progress

    if not 1 <= args.count <= 100:
        raise UsageError(f"--count {args.count}: must be between 1 and 100")
    if args.detail != "textbook":
        raise UsageError("--detail: exercises' solutions are textbook documents")
    out = folder(args.out)
    with progress.replacing(out) as new:
        written = write_exercises(new, args.level, args.count, args.seed, pdf=not args.no_pdf, paper=args.paper)
    print(f"wrote {args.count} exercises ({args.level}, seed {args.seed}) into {out}: {len(written)} files, "
          f"index {out / 'README.md'}")
    return 0
