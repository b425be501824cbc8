"""Many small MLPs trained at once: stacked parameters, batched matmuls, backprop written out.

All models of a *group* share an architecture (activation, depth, width, residual, LayerNorm) and differ
in their initialization, seed and learning rate. Layer ``l`` of all M models is one tensor of shape
(M, d_in + 1, d_out) (the weight, transposed, with the bias as its last row) and runs as one ``torch.bmm``
over the models. The models never mix: the gradient is that of the sum of the per-model mean losses, so
model ``m``'s gradient is exactly the one it would get alone. Plain MLPs backpropagate by hand
(:class:`_ByHand`); residual and LayerNorm nets through autograd; both are tested against autograd.

Initialization calls ``torch.nn.init`` on each model's (d_out, d_in) weight, as ``nn.Linear`` stores it,
with a ``torch.Generator`` seeded by the model's seed, layer by layer from input to output, weight then
bias. A model's initial parameters are therefore the same whichever batch it trains in, and equal those
of an ``nn.Linear`` stack initialized the same way (the tests replay models unbatched).

The first step at which a model's loss or gradient is not finite is kept on the device
(``first_failure``, -1 while none) and read once, at the end: no host synchronisation per step.

Examples:
    >>> import torch
    >>> from numstab.lab._batched import Architecture, InitSpec, init_stack, train
    >>> from numstab.lab._digits import load
    >>> arch = Architecture("tanh", depth=2, width=16)
    >>> params = init_stack(arch, [InitSpec("xavier_normal", seed=s) for s in (0, 1)])
    >>> out = train(arch, params, torch.tensor([0.1, 0.1]), load(seed=0), steps=5, batch_size=32)
    >>> tuple(out.test_accuracy.shape), out.first_failure.tolist()
    ((2,), [-1, -1])
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from numstab.errors import InvalidArgumentError
from numstab.lab._digits import Digits, batch_indices

__all__ = [
    "Architecture",
    "InitSpec",
    "Rule",
    "Outcome",
    "Stack",
    "init_stack",
    "forward",
    "per_model_loss",
    "train",
    "activation_fn",
    "SCHEMES",
    "NUMBER_OF",
    "settle_numbers",
]

#: Initialization schemes, each ``torch.nn.init``'s law on every layer (output layer included).
SCHEMES = ("normal", "xavier_normal", "kaiming_normal", "orthogonal", "weight_std", "critical")

#: The number each scheme takes, by its name: ``scale`` is the raw std of every entry (the book's, as in
#: ``numstab.init.apply_(model, "normal", scale=...)``), ``gain`` multiplies an orthogonal matrix,
#: ``weight_std`` is the mean-field sigma_w (entries N(0, sigma_w**2 / fan_in)). The others take none.
NUMBER_OF = {"normal": "scale", "orthogonal": "gain", "weight_std": "weight_std"}


def settle_numbers(spec: Any, scheme: str) -> None:
    """Check that a frozen ``spec`` gives only the number ``scheme`` takes, and set it to 1 if not given.

    Raises:
        InvalidArgumentError: a number the scheme does not take (the message names the one it does).
    """
    wanted = NUMBER_OF.get(scheme)
    if scheme in SCHEMES:
        for name in ("scale", "gain", "weight_std"):
            if getattr(spec, name) is not None and name != wanted:
                takes = f"it takes {wanted}=" if wanted else "it takes no number"
                raise InvalidArgumentError(f"{name}= does not apply to init {scheme!r}: {takes}")
    if wanted is not None and getattr(spec, wanted) is None:
        object.__setattr__(spec, wanted, 1.0)


def _tanh_into(z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """tanh(z) = 2 sigmoid(2z) - 1 written into ``out``; the fresh pre-activation z is overwritten.

    torch's CPU sigmoid kernel is ~3x faster than its tanh kernel here (measured); the two agree to 2e-7.
    Clamping 2z to [-40, 40] changes no output (2 sigmoid(+-40) - 1 rounds to +-1 in float32, as does
    tanh beyond +-20) but keeps sigmoid away from the subnormal range, where the CPU is ~4x slower.
    """
    return torch.sub(torch.sigmoid_(z.mul_(2.0).clamp_(-40.0, 40.0)).mul_(2.0), 1.0, out=out)


#: Activations with a torch kernel: (f(z, out) writing f(z) into out, overwriting the fresh z;
#: (delta, a) -> delta * f'(a) written with the *output* a = f(z)), so a layer keeps one tensor and
#: backprops in two ops.
_FUSED: dict[str, tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]] = {
    "tanh": (_tanh_into, lambda d, a: torch.addcmul(d, d * a, a, value=-1.0)),  # d (1 - a^2)
    "sigmoid": (
        lambda z, out: torch.sigmoid(z, out=out),
        lambda d, a: torch.addcmul(d * a, d * a, a, value=-1.0),  # d a (1 - a)
    ),
    "relu": (
        lambda z, out: torch.clamp(z, min=0.0, out=out),
        lambda d, a: d.masked_fill(a <= 0, 0.0),  # torch's threshold_backward
    ),
    "scaled_sigmoid": (
        lambda z, out: torch.sub(torch.sigmoid_(z).mul_(4.0), 2.0, out=out),
        lambda d, a: torch.addcmul(d, d * a, a, value=-0.25),  # f' = 4 s (1 - s) = 1 - a^2 / 4
    ),
}


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the activation as a differentiable torch function.

    Examples:
        >>> activation_fn("scaled_sigmoid")(torch.zeros(1)).tolist()
        [0.0]
    """
    from numstab import activations

    return activations.get(name).fn


class _DenseAct(torch.autograd.Function):
    """f(h @ W + b) for stacked models, forward and backward by hand (one autograd node per layer).

    With a = f(z), z = h W + b and upstream gradient g: dz = g * f'(a), dh = dz W^T, dW = h^T dz,
    db = sum over the batch of dz. Checked against autograd by ``torch.autograd.gradcheck`` in the tests.
    """

    @staticmethod
    def forward(ctx, h, w, b, name):  # noqa: ANN001, ANN205
        z = torch.bmm(h, w).add_(b)  # cheaper than baddbmm's broadcast copy of b
        a = _FUSED[name][0](z, z)
        ctx.save_for_backward(h, w, a)
        ctx.name = name
        return a

    @staticmethod
    def backward(ctx, g):  # noqa: ANN001, ANN205
        h, w, a = ctx.saved_tensors
        dz = _FUSED[ctx.name][1](g, a)
        dh = torch.bmm(dz, w.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        return dh, torch.bmm(h.transpose(1, 2), dz), dz.sum(1, keepdim=True), None


def dense_act(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, activation: str) -> torch.Tensor:
    """f(h W + b) for M stacked models: h (M, B, d_in), w (M, d_in, d_out), b (M, 1, d_out).

    Examples:
        >>> h, w, b = torch.ones(1, 1, 2), torch.ones(1, 2, 1), torch.zeros(1, 1, 1)
        >>> dense_act(h, w, b, "relu").tolist()
        [[[2.0]]]
    """
    if activation in _FUSED:
        return _DenseAct.apply(h, w, b, activation)
    return activation_fn(activation)(torch.baddbmm(b, h, w))


@dataclass(frozen=True)
class Architecture:
    """What every model of a group shares.

    Attributes:
        activation: activation name from :mod:`numstab.activations`.
        depth: number of hidden layers (each Linear then activation); one output Linear follows.
        width: units per hidden layer.
        residual: hidden layers after the first compute ``h + f(W h + b)`` (He et al. 2016).
        layernorm: normalize each pre-activation over its units, no affine (Ba et al. 2016).
        n_in: input features.
        n_out: classes.
    """

    activation: str
    depth: int
    width: int
    residual: bool = False
    layernorm: bool = False
    n_in: int = 64
    n_out: int = 10

    def shapes(self) -> list[tuple[int, int]]:
        """(d_out, d_in) of every Linear, input to output (``nn.Linear.weight``'s shape)."""
        hidden = [(self.width, self.width)] * (self.depth - 1)
        return [(self.width, self.n_in), *hidden, (self.n_out, self.width)]


@dataclass(frozen=True)
class InitSpec:
    """How one model is initialized.

    Attributes:
        scheme: one of :data:`SCHEMES`. ``normal``: N(0, scale**2) entries (the book's raw scale);
            ``xavier_normal``/``kaiming_normal``: torch's (gain 1; kaiming for relu, fan_in);
            ``orthogonal``: ``torch.nn.init.orthogonal_`` with ``gain``;
            ``weight_std``: N(0, weight_std**2 / fan_in), the mean-field sigma_w;
            ``critical``: ``numstab.init.critical_`` for the group's activation and ``bias_std``.
        scale: the raw std of each entry (``normal`` only; default 1).
        bias_std: biases ~ N(0, bias_std**2); exactly 0 when bias_std == 0.
        seed: seed of the model's own ``torch.Generator``.
        gain: the orthogonal matrix's gain (``orthogonal`` only; default 1).
        weight_std: sigma_w (``weight_std`` only; default 1).
    """

    scheme: str
    scale: float | None = None
    bias_std: float = 0.0
    seed: int = 0
    gain: float | None = None
    weight_std: float | None = None

    def __post_init__(self) -> None:
        settle_numbers(self, self.scheme)


@dataclass(frozen=True)
class Rule:
    """The update rule: SGD, optionally with per-model clipping or LARS-style per-layer rates.

    Attributes:
        clip: clip each model's gradient to this global norm with ``torch.nn.utils.clip_grad_norm_``'s
            formula, coefficient ``min(1, clip / (norm + 1e-6))``; None for no clipping.
        lars: LARS trust coefficient eta (You et al. 2017): layer l (weight and bias together) steps by
            ``lr * eta * ||theta_l|| / ||g_l||`` times its gradient. None for plain SGD.
    """

    clip: float | None = None
    lars: float | None = None


@dataclass
class Stack:
    """The parameters of M models, layer by layer (mutable: training updates them in place).

    Layer l is one tensor of shape (M, d_in + 1, d_out): rows 0..d_in-1 hold ``nn.Linear.weight``
    transposed (for ``bmm``), the last row the bias, so that one matmul against inputs with an appended
    column of ones applies both, and one op updates both.

    Attributes:
        layers: per layer, shape (M, d_in + 1, d_out).
    """

    layers: list[torch.Tensor]

    @property
    def weights(self) -> list[torch.Tensor]:
        """Views of the weights, per layer (M, d_in, d_out)."""
        return [t[:, :-1] for t in self.layers]

    @property
    def biases(self) -> list[torch.Tensor]:
        """Views of the biases, per layer (M, 1, d_out)."""
        return [t[:, -1:] for t in self.layers]

    def clone(self) -> Stack:
        """A deep copy."""
        return Stack([t.clone() for t in self.layers])

    def linear(self, m: int, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Model m's layer as ``nn.Linear`` holds it: weight (d_out, d_in), bias (d_out,)."""
        t = self.layers[layer][m]
        return t[:-1].T.contiguous(), t[-1].clone()


@dataclass(frozen=True)
class Outcome:
    """What a group's training measured (tensors on the host; models along the M dimension).

    Attributes:
        record_steps: the steps at which loss and gradient norms were recorded, shape (R,).
        losses: minibatch loss at each recorded step, shape (R, M).
        grad_norms: each layer's gradient norm (weight and bias), shape (R, M, depth + 1).
        first_failure: first step with a non-finite loss or gradient, -1 if none, shape (M,).
        final_loss: training loss over the whole training set after the last step, shape (M,).
        test_accuracy: share of test images classified right (non-finite logits count wrong), (M,).
        weight_change: ||theta_end - theta_0|| / ||theta_0|| per layer, shape (M, depth + 1).
    """

    record_steps: torch.Tensor
    losses: torch.Tensor
    grad_norms: torch.Tensor
    first_failure: torch.Tensor
    final_loss: torch.Tensor
    test_accuracy: torch.Tensor
    weight_change: torch.Tensor


def _init_weight_(w: torch.Tensor, arch: Architecture, spec: InitSpec, g: torch.Generator) -> None:
    if spec.scheme == "normal":
        torch.nn.init.normal_(w, 0.0, spec.scale, generator=g)
    elif spec.scheme == "xavier_normal":
        torch.nn.init.xavier_normal_(w, generator=g)
    elif spec.scheme == "kaiming_normal":
        torch.nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)
    elif spec.scheme == "orthogonal":
        torch.nn.init.orthogonal_(w, gain=spec.gain, generator=g)
    elif spec.scheme == "weight_std":
        torch.nn.init.normal_(w, 0.0, spec.weight_std / math.sqrt(w.shape[1]), generator=g)
    elif spec.scheme == "critical":
        from numstab import init

        init.critical_(w, arch.activation, bias_std=spec.bias_std, generator=g)
    else:  # the public layer validates names; reaching this is a programming error
        raise ValueError(f"unknown scheme {spec.scheme!r}")


def init_stack(arch: Architecture, specs: Sequence[InitSpec]) -> Stack:
    """Return the initial parameters of ``len(specs)`` models (float32).

    Examples:
        >>> s = init_stack(Architecture("relu", 1, 4, n_in=3, n_out=2), [InitSpec("normal", 0.1)])
        >>> [tuple(t.shape) for t in s.layers], [tuple(b.shape) for b in s.biases]
        ([(1, 4, 4), (1, 5, 2)], [(1, 1, 4), (1, 1, 2)])
    """
    layers = []
    gens = [torch.Generator().manual_seed(int(spec.seed)) for spec in specs]
    with torch.no_grad():
        for d_out, d_in in arch.shapes():
            w, b = torch.empty(len(specs), d_out, d_in), torch.zeros(len(specs), 1, d_out)
            for m, (spec, g) in enumerate(zip(specs, gens, strict=True)):
                _init_weight_(w[m], arch, spec, g)
                if spec.bias_std > 0:
                    torch.nn.init.normal_(b[m], 0.0, spec.bias_std, generator=g)
            layers.append(torch.cat([w.transpose(1, 2), b], dim=1))
    return Stack(layers)


def forward(
    arch: Architecture, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor
):
    """Logits of every model, shape (M, B, n_out), for inputs x of shape (B, n_in)."""
    h = x.expand(weights[0].shape[0], *x.shape)
    for index, (w, b) in enumerate(zip(weights[:-1], biases[:-1], strict=True)):
        a = _normed_act(h, w, b, arch.activation) if arch.layernorm else dense_act(h, w, b, arch.activation)
        h = h + a if (arch.residual and index > 0) else a  # (M, B, width)
    return torch.baddbmm(biases[-1], h, weights[-1])


def _normed_act(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, activation: str) -> torch.Tensor:
    z = torch.baddbmm(b, h, w)
    return activation_fn(activation)(F.layer_norm(z, z.shape[-1:]))


def per_model_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each model, shape (M,), for labels y of shape (B,)."""
    m, b, c = logits.shape
    return F.cross_entropy(logits.reshape(m * b, c), y.repeat(m), reduction="none").view(m, b).mean(1)


def _layer_norms(layers: Sequence[torch.Tensor]) -> torch.Tensor:
    """Norm of each model's layers (weight and bias together), shape (M, layers)."""
    return torch.stack([torch.linalg.vector_norm(t, dim=(1, 2)) for t in layers], 1)


def _largest_entry(layers: Sequence[torch.Tensor]) -> torch.Tensor:
    """Largest |entry| of each model's gradient, shape (M,): not finite iff some entry is inf or NaN.

    The 2-norm would not do: finite entries above 1.8e19 overflow its float32 sum of squares.
    """
    # abs().amax() propagates NaN and is ~30x faster here than aminmax or vector_norm(ord=inf) (measured)
    return torch.stack([t.view(t.shape[0], -1).abs().amax(dim=1) for t in layers], dim=1).amax(1)


def _coefficients(stack: Stack, norms: torch.Tensor | None, lr: torch.Tensor, rule: Rule) -> torch.Tensor:
    """The factor multiplying each gradient: shape (M, layers), or (M, 1) for plain SGD."""
    coef = lr.to(torch.float32).view(-1, 1)
    if norms is None:
        return coef
    if rule.clip is not None:
        total = torch.linalg.vector_norm(norms, dim=1, keepdim=True)
        # torch.nn.utils.clip_grad_norm_'s coefficient; clamped rather than branched on: no host sync
        coef = coef * (rule.clip / (total + 1e-6)).clamp(max=1.0)
    if rule.lars is not None:
        coef = coef * (rule.lars * _layer_norms(stack.layers) / (norms + 1e-12))
    return coef


def train(
    arch: Architecture,
    stack: Stack,
    lrs: torch.Tensor,
    data: Digits,
    *,
    steps: int,
    batch_size: int,
    rule: Rule = Rule(),
    record_every: int = 10,
    order_seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> Outcome:
    """Train the M models of ``stack`` with SGD at rates ``lrs`` (M,); return what was measured.

    ``stack`` is updated in place. Every model sees the same minibatches, fixed by ``order_seed``.
    ``progress(k)`` is called after each step with the number of steps done so far.
    """
    start = stack.clone()
    order = batch_indices(
        len(data.y_train), batch_size, steps, generator=torch.Generator().manual_seed(order_seed)
    )
    n_models, n_layers = lrs.shape[0], arch.depth + 1
    losses = torch.full((len(range(0, steps, record_every)), n_models), math.nan)
    grad_norms = torch.zeros(losses.shape[0], n_models, n_layers)
    failure = torch.full((n_models,), -1, dtype=torch.long)
    if arch.activation in _FUSED and not (arch.residual or arch.layernorm):
        grads_of = _ByHand(arch, n_models, batch_size)
    else:
        grads_of = functools.partial(_loss_and_grads, arch)
    for step in range(steps):
        loss, grads = grads_of(stack, data.x_train[order[step]], data.y_train[order[step]])
        bad = ~(torch.isfinite(loss) & torch.isfinite(_largest_entry(grads)))
        failure = torch.where(bad & (failure < 0), step, failure)  # stays on the device: no sync
        recording = step % record_every == 0
        norms = _layer_norms(grads) if (recording or rule != Rule()) else None
        if recording:
            losses[step // record_every] = loss
            grad_norms[step // record_every] = norms
        _apply(stack, grads, _coefficients(stack, norms, lrs, rule))
        if progress is not None:
            progress(step + 1)
    return _finish(
        arch, stack, start, data, torch.arange(0, steps, record_every), losses, grad_norms, failure
    )


class _ByHand:
    r"""Loss and gradients of a plain MLP with a fused activation, without building an autograd graph.

    Backpropagation written out (Rumelhart et al. 1986): with per-model loss the batch mean of the
    cross-entropy, :math:`\partial L/\partial z_{out} = (\mathrm{softmax}(z_{out}) - e_y)/B`; then per
    layer, from the top, :math:`\delta_l = (\delta_{l+1} W_{l+1}^\top) \odot f'(a_l)` and
    :math:`\partial L/\partial [W_l; b_l] = [h_{l-1}, 1]^\top \delta_l`.
    Each layer's input is kept with an appended column of ones (buffers reused across steps), so one
    ``bmm`` applies weight and bias and one gives both gradients. Equal to autograd's within float32
    rounding (tested).
    """

    def __init__(self, arch: Architecture, n_models: int, batch: int) -> None:
        self.arch = arch
        self.inputs = [torch.ones(n_models, batch, d_in + 1) for _, d_in in arch.shapes()]

    def __call__(
        self, stack: Stack, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        f, df = _FUSED[self.arch.activation]
        hs, layers = self.inputs, stack.layers  # hs[l]: the input of layer l with its ones column
        hs[0][..., :-1] = x
        for layer, t in enumerate(layers[:-1]):
            f(torch.bmm(hs[layer], t), hs[layer + 1][..., :-1])
        logp = torch.log_softmax(torch.bmm(hs[-1], layers[-1]), dim=-1)
        target = y.view(1, -1, 1).expand(logp.shape[0], -1, 1)
        loss = -logp.gather(2, target).squeeze(2).mean(1)
        ones = torch.ones_like(target, dtype=logp.dtype)
        delta = logp.exp_().scatter_add_(2, target, -ones).div_(y.shape[0])
        grads = []
        for layer in range(len(layers) - 1, -1, -1):
            if layer < len(layers) - 1:
                delta = df(delta, hs[layer + 1][..., :-1])  # this layer's output a = f(z)
            grads.append(torch.bmm(hs[layer].transpose(1, 2), delta))
            if layer > 0:
                delta = torch.bmm(delta, layers[layer][:, :-1].transpose(1, 2))
        return loss, grads[::-1]


def _loss_and_grads(
    arch: Architecture, stack: Stack, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss and gradients by autograd (any activation, residual, LayerNorm)."""
    leaves = [t.detach().requires_grad_() for t in stack.layers]
    ws, bs = [t[:, :-1] for t in leaves], [t[:, -1:] for t in leaves]
    loss = per_model_loss(forward(arch, ws, bs, x), y)
    return loss.detach(), list(torch.autograd.grad(loss.sum(), leaves))


@torch.no_grad()
def _apply(stack: Stack, grads: Sequence[torch.Tensor], coef: torch.Tensor) -> None:
    for layer, (t, g) in enumerate(zip(stack.layers, grads, strict=True)):
        t.addcmul_(g, coef[:, min(layer, coef.shape[1] - 1)].view(-1, 1, 1), value=-1.0)


@torch.no_grad()
def _finish(
    arch: Architecture,
    stack: Stack,
    start: Stack,
    data: Digits,
    records: torch.Tensor,
    losses: torch.Tensor,
    norms: torch.Tensor,
    failure: torch.Tensor,
) -> Outcome:
    final_loss = per_model_loss(forward(arch, stack.weights, stack.biases, data.x_train), data.y_train)
    logits = forward(arch, stack.weights, stack.biases, data.x_test)
    right = (logits.argmax(-1) == data.y_test) & torch.isfinite(logits).all(-1)
    moved = [t - t0 for t, t0 in zip(stack.layers, start.layers, strict=True)]
    change = _layer_norms(moved) / _layer_norms(start.layers)
    return Outcome(records, losses, norms, failure, final_loss, right.float().mean(1), change)
