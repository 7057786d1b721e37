"""Backpropagation of a Network: one reverse sweep, with δ^(l) = ∂L/∂Z^(l) named at every layer."""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardProduct

from ..core.expr import hadamard, replace_nodes
from ..core.functions import ELT, elementwise
from ..core.shapes import memoised
from ..engine.backward import backward, zero_like
from ..engine.derivation import Result, check_detail, once
from ..engine.forward import tangent
from ..errors import InvalidArgument, UnsupportedOperation

if TYPE_CHECKING:   # the network module builds on this one
    from .network import Network
from ..printing.text import step_lines, text, wrap_lines
from .forms import diag_form, index_form
from . import views_attention, views_convolution, views_recurrent  # noqa: F401 (each enters its block kind's view in VIEWS)
from .textbook import chain_lines, textbook

FORMS = ("hadamard", "diag", "index")
PROGRAMS = ("gradients", "loss", "loss_and_gradients", "forward")
SECOND = ("hvp", "gauss_newton")  # compiled on request, not written into the module


@dataclass(frozen=True)
class Backprop(Result):
    """The derived backprop of a network: forward definitions, δ recursion, gradients, and every step.
    Its code: .numpy(what) compiles one of PROGRAMS (default "gradients": f(X=..., Y=..., W1=..., b1=..., ...) ->
    {parameter: gradient}, one pass for all), .source(what), .module()."""

    PROGRAMS = PROGRAMS

    network: object
    forward: dict    # Z^(l), A^(l) -> definition, in forward order
    deltas: dict     # δ^(l) -> ∂L/∂Z^(l) in terms of δ^(l+1), from the output layer down
    gradients: dict  # parameter name -> ∂L/∂P in terms of δ^(l) and A^(l−1)
    steps: tuple     # the engine's log, from dL to the last gradient read off
    adjoints: dict   # A^(l) -> ∂L/∂A^(l) in terms of δ^(l+1) (e.g. seed 003's ∂C/∂a^(L−1))

    @property
    def loss(self):
        return self.network.loss

    def specification(self):
        """What an independent verification needs, as plain data: the network's specification and the derived
        expressions by name (forward definitions, δ recursion, gradients)."""
        return {"kind": "network", "network": self.network.specification(),
                "forward": [(Z.name, E) for Z, E in self.forward.items()],
                "deltas": [(d.name, E) for d, E in self.deltas.items()], "gradients": dict(self.gradients)}

    def parameter(self, name):
        """The MatrixSymbol of a parameter, by name."""
        found = [p for p in self.network.parameters if p.name == name]
        if not found:
            raise InvalidArgument(f"no parameter {name!r}; the parameters are "
                                  f"{', '.join(p.name for p in self.network.parameters)}")
        return found[0]

    def form(self, name="hadamard"):
        """{`"delta<l>"` or parameter name: expression} in one of FORMS: "hadamard" (as derived),
        "diag" (seed 000: u ⊙ σ'(z) = diag(σ'(z)) u; single sample, samples as columns) or
        "index" (seed 001: the (i, j) entry, sums over inner indices)."""
        results = {**{delta.name: E for delta, E in self.deltas.items()}, **self.gradients}
        if name == "hadamard":
            return results
        if name == "diag":
            net = self.network
            if net.m != 1 or net.layout == "AW":
                raise InvalidArgument(f"the diag form is for a single sample with samples as columns (m = 1, layout WA "
                                 f"or WtA); this network has m = {net.m}, layout {net.layout}")
            carried = (net.Y, *self.deltas)
            return {k: diag_form(E, carried) for k, E in results.items()}
        if name == "index":
            return {k: index_form(E) for k, E in results.items()}
        raise InvalidArgument(f"unknown form {name!r}; valid: {', '.join(FORMS)}")

    def plan(self, what="gradients"):
        """(arguments, statements, outputs) of one of PROGRAMS: "gradients" (the forward pass, the δ recursion and
        every gradient, in order), "loss" (from the logits where that is stabler), "loss_and_gradients",
        "forward" (every Z^(l), A^(l))."""
        if what not in PROGRAMS + SECOND:
            raise InvalidArgument(f"unknown program {what!r}; valid: {', '.join(PROGRAMS + SECOND)}")
        if what in SECOND:
            args, statements, _ = self.plan("gradients")
            r_statements, outputs = r_pass(self, what)
            return [*args, *self.directions().values()], [*statements, *r_statements], outputs
        net = self.network
        loss = net.loss_from_logits()
        scalars = sorted(set().union(*[e.free_symbols for e in (*self.gradients.values(), loss)])
                         - set(net.sizes) - {net.m}, key=str)
        scalars = [s for s in scalars if not s.is_Matrix and not any(s in p.shape for p in net.parameters)
                   and s not in net.constants]
        args = [*net.inputs, *net.given, net.Y, *net.parameters, *scalars]
        forward = list(self.forward.items())
        forward = [(Z, E.xreplace(net.constants)) for Z, E in forward]   # ε of a layer norm as its value
        if what == "forward":   # Y is not read
            return [a for a in args if a != net.Y], forward, {str(Z): Z for Z in self.forward}
        if what == "loss":
            return args, forward, loss
        outputs = dict(self.gradients) if what == "gradients" else {"loss": loss, **self.gradients}
        masks = {**self._masks(), **net.constants}
        return args, [*forward, *((d, self._stable(E.xreplace(masks))) for d, E in self.deltas.items())], outputs

    def torch(self, sizes: dict | None = None, seed: int = 0, dtype: Any = None, device: Any = None,
              scalars: dict | None = None) -> Any:
        """The network as a torch.nn.Module: its parameters as nn.Parameters under their names (started as their
        metadata says, from `seed`; `sizes` gives symbolic sizes values), forward(X, Y) the loss whose backward is the
        derived program, predict(X) the output; any torch.optim optimizer trains it, on CPU or CUDA."""
        from ..frameworks.torch import Module
        return Module(self, sizes=sizes, seed=seed, dtype=dtype, device=device, scalars=scalars)

    def jax(self, scalars: dict | None = None) -> Any:
        """The network's loss as a pure JAX function loss(params, X, Y), params {name: array}, a jax.custom_vjp whose
        backward is the derived program: it works under jax.jit and jax.grad (params only: X and Y are refused)."""
        from ..frameworks.jax import network_loss
        return network_loss(self, scalars)

    def directions(self):
        """{parameter: `V_<name>`}: the direction of a Hessian-vector or Gauss–Newton product, one per parameter."""
        return {P: sp.MatrixSymbol(f"V_{P.name}", *P.shape) for P in self.network.parameters}

    def r_statements(self, kind="hvp"):
        """([(R{S}, its definition)], {parameter: product}): the R pass of `kind` ("hvp" or "gauss_newton")."""
        return r_pass(self, kind)

    def _stable(self, E):
        """E with each activation's code forms in place: a product of Hadamard factors that code computes as one
        function (softplus: A^∘(−1) ⊙ σ(Z) as σ(Z)/softplus(Z), finite where both factors underflow)."""
        for layer in self.network.activated:
            forms = layer.activation.code_forms
            for factors, replacement in (forms(layer.Z, layer.A) if forms else ()):
                def rebuild(node, factors=factors, replacement=replacement):
                    if not (isinstance(node, HadamardProduct) and factors <= set(node.args)):
                        return None
                    return hadamard(*[a for a in node.args if a not in factors], replacement)
                E = replace_nodes(E, rebuild)
        return E

    def _masks(self):
        """{[Z^(l) > 0]: [A^(l) > 0]} for layers whose activation has the sign of its input (relu, leaky relu): the
        code then reads the mask off A^(l) and can free Z^(l) right after the forward step."""
        step = sp.Heaviside(ELT, 0)
        return {elementwise(step, layer.Z): elementwise(step, layer.A)
                for layer in self.network.activated if layer.activation.same_sign}

    def _module_head(self):
        net = self.network
        shapes = ", ".join(f"{M.name} {text(M.rows)}×{text(M.cols)}"
                           for M in (*net.inputs, *net.given, net.Y, *net.parameters))
        lines = [f"Gradients of the {net.describe()}, generated by derive (matrix-backprop).", "",
                 "Every function takes X, Y and the parameters as keyword or positional arrays of one array library",
                 "and returns arrays of the same library and floating type.", "", f"Inputs: {shapes}.",
                 "Forward pass:", *(f"    {text(Z)} = {text(E)}" for Z, E in self.forward.items()),
                 "Loss:", f"    L = {text(net.loss)}",
                 "Backward pass:", *(f"    {text(d)} = {text(E)}" for d, E in self.deltas.items()),
                 *(f"    ∂L/∂{k} = {text(G)}" for k, G in self.gradients.items())]
        return "\n".join(lines)

    def _notes(self, what):
        note = self.network.loss_note()
        return {} if note is None else {None: note} if what == "loss" else {"loss": note}

    def _docstring(self, what):
        return {"gradients": "{parameter: ∂L/∂parameter}: the forward pass, the δ recursion and every gradient, once.",
                "loss": "The loss L (from the logits where that is more accurate).",
                "loss_and_gradients": "{'loss': L, parameter: ∂L/∂parameter}, from one forward and one backward pass.",
                "forward": "{'Z1': Z⁽¹⁾, 'A1': A⁽¹⁾, …}: every value of the forward pass.",
                "hvp": "{parameter: (H v) for that parameter}: the Hessian of L times the direction V_<parameter>, from "
                       "one forward, one backward and one R pass (R{Z}, R{A} forward, R{δ} backward).",
                "gauss_newton": "{parameter: (G v) for that parameter}: the Gauss–Newton matrix Jᵀ H_L J (J of the "
                                "output Z⁽ᴸ⁾) times the direction V_<parameter>."}[what]

    def text(self, detail="textbook"):
        """The summary, then the derivation: one chain per layer ("textbook") or every step with its rule
        ("full"), in lines of at most 100 columns."""
        if check_detail(detail) == "full":
            body = ["Derivation (one reverse sweep, output layer first):", *step_lines(self.steps, function="L")]
        else:
            body = [line for chain in textbook(self)[1] for line in ["", *chain_lines(chain)]]
        return "\n".join([*wrap_lines(str(self).split("\n")), "", *body])

    def __repr__(self):
        return f"<Backprop of the {self.network.describe()}>"

    def __str__(self):
        lines = [f"L = {text(self.loss)}"]
        lines += [f"  {text(Z)} = {text(E)}" for Z, E in self.forward.items()]
        lines += [f"{text(delta)} = {text(E)}" for delta, E in self.deltas.items()]
        lines += [f"∂L/∂{name} = {text(G)}" for name, G in self.gradients.items()]
        return "\n".join(lines)


@once
@memoised
def r_pass(bp, kind="hvp"):
    """([(R{S}, its definition)], {parameter name: product}): Pearlmutter's R-operator in matrix form, R{S} the
    forward differential of every value S of the backprop along dP = V_P: a forward tangent pass (R{Z}, R{A}) and a
    second backward pass (R{δ}), then R{∂L/∂P} = H v. kind="gauss_newton" gives G v = Jᵀ H_L J v instead, with J the
    Jacobian of the network's output Z^(L) and H_L = ∂²L/∂Z^(L)²: the output δ differentiated through the forward
    values only, every other δ and gradient through the δ (and the weight decay's P) only."""
    net = bp.network
    masks = {**bp._masks(), **net.constants}
    forward = [(Z, E.xreplace(net.constants)) for Z, E in bp.forward.items()]
    backward = [(delta, E.xreplace(masks)) for delta, E in bp.deltas.items()]
    R = dict(bp.directions())
    parameters, deltas, values = set(net.parameters), set(bp.deltas), set(bp.forward)
    output = next(iter(bp.deltas))
    reads = bp.deltas[output].free_symbols
    if kind == "gauss_newton" and reads & (parameters | deltas):
        # G = Jᵀ H_L J needs δ of the output to be ∂L/∂(output), a function of the output and Y alone
        raise UnsupportedOperation("Gauss–Newton", bp.deltas[output], f"the output's δ {output} reads "
                                   f"{sorted(map(str, reads & (parameters | deltas)))}, not only forward values",
                                   action="form")

    names = {E: Z for Z, E in forward if not isinstance(E, sp.MatrixSymbol)}   # σ(Z) written A where it reappears

    def seeds(allowed):
        return R if kind == "hvp" else {k: v for k, v in R.items() if k in allowed}

    statements = []
    for S, E in forward + backward:
        allowed = values | parameters if S not in deltas else values if S == output else deltas
        T, _ = tangent(E, seeds(allowed), names=names)
        if isinstance(T, sp.ZeroMatrix):
            continue
        R[S] = sp.MatrixSymbol(f"R_{S.name}", *S.shape)
        statements.append((R[S], T))
    outputs = {name: tangent(G.xreplace(masks), seeds(deltas | parameters), names=names)[0]
               for name, G in bp.gradients.items()}
    return statements, outputs


@memoised
def backprop(network: "Network") -> "Backprop":
    """The backprop of `network`: every ∂L/∂W^(l), ∂L/∂b^(l) from one sweep, written with Z, A and δ."""
    names = network.deltas
    adjoint, steps = backward(network.loss, network.parameters, network.forward, names)
    deltas = {names[Z]: adjoint[Z] for Z in reversed(network.forward) if Z in names and Z in adjoint}
    gradients = {P.name: adjoint.get(P, zero_like(P)) for P in network.parameters}
    adjoints = {layer.A: adjoint[layer.A] for layer in reversed(network.layers) if layer.A in adjoint}
    return Backprop(network, dict(network.forward), deltas, gradients, tuple(steps), adjoints)
