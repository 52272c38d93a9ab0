"""Tier 3: can the model learn, which learning rate suits it, and how fast is it.

``training_loop``          a short AdamW run on a learnable synthetic task; the loss must fall.
``hyperparameter_search``  a few optuna trials over learning rate and weight decay (skip without optuna).
``benchmark``              forward-pass tokens/s against a ``TinyDecoder`` of about the same size.

Training always happens on a deep copy, so the user's model is left exactly as it was.
Every test is ``test(model, config) -> TestResult``; ``run(model, config)`` runs them all.
``loss_curve_html()`` renders the last ``training_loop`` losses (empty without matplotlib).
"""

from __future__ import annotations

import base64
import copy
import io
import math
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import modelio
from .models import TinyDecoder, parameter_count
from .optional import skip_missing, try_import
from .results import TestResult, TierResult, run_tier

# --- the synthetic task and the training runs -----------------------------------------------------
TRAIN_BATCH = 8
TRAIN_SEQ = 32
# Sequences walk a fixed cycle of CYCLE_TOKENS distinct tokens, so every token has one fixed
# successor: any language model that uses its current token can learn it in a few dozen steps,
# whatever its vocabulary size.
CYCLE_TOKENS = 32
TRAIN_STEPS = 40
DEFAULT_LR = 3e-3  # used unless the config has learning_rate / lr
GRAD_CLIP = 1.0
FINAL_WINDOW = 5  # the final loss is the mean of the last steps, so one noisy step does not decide
# The final loss must be at least this share below the initial loss (log(vocab) at initialisation).
MIN_LOSS_DROP = 0.2

# --- hyperparameter_search ----------------------------------------------------------------------
SEARCH_TRIALS = 5
SEARCH_STEPS = 15
LR_RANGE = (1e-4, 1e-2)
WEIGHT_DECAY_RANGE = (1e-4, 1e-1)

# --- benchmark ----------------------------------------------------------------------------------
BENCH_BATCH = 8
BENCH_SEQ = 64
BENCH_MIN_RUN_TIME_S = 0.2  # per model; torch.utils.benchmark repeats the forward pass until then
SLOW_RATIO = 0.25
REFERENCE_HEADS = 4
REFERENCE_DEFAULT_LAYERS = 2
LAYER_FIELDS = ("n_layers", "num_layers", "n_layer", "num_hidden_layers")

# The per-step losses of the latest training_loop run, for loss_curve_html().
loss_curve: list[float] = []


# =================================================================================================
# training_loop
# =================================================================================================

def training_loop(model: nn.Module, config: Any) -> TestResult:
    lr = float(modelio.config_get(config, ("learning_rate", "lr"), DEFAULT_LR))
    losses = train_copy(model, config, TRAIN_STEPS, lr)
    loss_curve[:] = losses
    initial, final = losses[0], _final_loss(losses)
    metrics = {
        "steps": len(losses),
        "lr": lr,
        "initial_loss": initial,
        "final_loss": final,
        "perplexity": math.exp(final) if math.isfinite(final) and final < 700 else None,  # exp overflows past ~709
        "loss_drop": (initial - final) / initial if initial else None,
    }
    if not math.isfinite(final):
        return TestResult("training_loop", "fail",
                          f"the loss became NaN/Inf at step {len(losses) - 1} (lr {lr:g}): look for exploding "
                          "gradients, log of 0, or a learning rate that is too high", metrics)
    if final > initial * (1 - MIN_LOSS_DROP):
        return TestResult("training_loop", "fail",
                          f"the loss did not fall: {initial:.3f} -> {final:.3f} in {len(losses)} AdamW steps (lr {lr:g}) "
                          f"on a task any language model learns quickly; check that parameters receive gradients "
                          "(nothing detached or frozen) and that the logits depend on the input", metrics)
    return TestResult("training_loop", "pass",
                      f"loss {initial:.3f} -> {final:.3f} in {len(losses)} steps (perplexity {metrics['perplexity']:.2f})",
                      metrics)


def train_copy(model: nn.Module, config: Any, steps: int, lr: float, weight_decay: float = 0.0,
               seed: int = 0) -> list[float]:
    """Train a deep copy of ``model`` on the synthetic task; the per-step losses (stops at NaN/Inf)."""
    device = modelio.device_of(model)
    student = copy.deepcopy(model).train()
    parameters = [p for p in student.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    inputs, targets = cycle_task(model, config, TRAIN_BATCH, min(modelio.max_seq_len(config), TRAIN_SEQ), seed)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    # A private RNG state: dropout is reproducible and the user's own random stream is untouched.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for _ in range(steps):
            logits = modelio.forward(student, inputs)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
            losses.append(loss.item())
            if not math.isfinite(losses[-1]):
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, GRAD_CLIP)
            optimizer.step()
    return losses


def cycle_task(model: nn.Module, config: Any, batch: int, seq: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, next-token targets) of sequences that walk a fixed random cycle of tokens."""
    vocab = modelio.vocab_size(model, config)
    generator = torch.Generator().manual_seed(seed)
    cycle = torch.randperm(vocab, generator=generator)[:min(vocab, CYCLE_TOKENS)]
    starts = torch.randint(0, len(cycle), (batch, 1), generator=generator)
    walks = cycle[(starts + torch.arange(seq + 1)) % len(cycle)]
    device = modelio.device_of(model)
    return walks[:, :-1].to(device), walks[:, 1:].to(device)


def _final_loss(losses: Sequence[float]) -> float:
    tail = losses[-FINAL_WINDOW:]
    return sum(tail) / len(tail)


def loss_curve_html(losses: Sequence[float] | None = None) -> str:
    """An <img> of the loss curve (the last training_loop run by default); "" without matplotlib."""
    losses = list(loss_curve if losses is None else losses)
    figure = try_import("matplotlib.figure")
    if figure is None or not losses:
        return ""
    # The object-oriented API draws off-screen without pyplot, so the notebook's backend is untouched.
    fig = figure.Figure(figsize=(4, 2.5))
    axes = fig.add_subplot()
    axes.plot(range(len(losses)), losses)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title("training_loop")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="training loss curve" src="data:image/png;base64,{encoded}"/>'


# =================================================================================================
# hyperparameter_search
# =================================================================================================

def hyperparameter_search(model: nn.Module, config: Any) -> TestResult:
    optuna = try_import("optuna")
    if optuna is None:
        return skip_missing("hyperparameter_search", "optuna", "Tier 3 hyperparameter search")

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        weight_decay = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
        losses = train_copy(model, config, SEARCH_STEPS, lr, weight_decay)
        trial.set_user_attr("initial_loss", losses[0])
        final = _final_loss(losses)
        if not math.isfinite(final):
            raise optuna.TrialPruned()  # a diverged trial is recorded, not a search-stopping error
        return final

    # optuna logs every trial at INFO; keep the cell quiet and restore the user's setting afterwards.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0))
        study.optimize(objective, n_trials=SEARCH_TRIALS)
    finally:
        optuna.logging.set_verbosity(verbosity)

    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    metrics: dict[str, float | int | None] = {"trials": len(study.trials), "completed_trials": len(completed)}
    if not completed:
        return TestResult("hyperparameter_search", "fail",
                          f"all {len(study.trials)} trials diverged to NaN/Inf loss for learning rates in "
                          f"{LR_RANGE[0]:g}-{LR_RANGE[1]:g}: the model cannot be trained stably", metrics)
    best = study.best_trial
    initial = float(best.user_attrs["initial_loss"])
    metrics.update(best_lr=best.params["lr"], best_weight_decay=best.params["weight_decay"],
                   best_loss=best.value, initial_loss=initial)
    found = (f"best of {len(completed)} trials: lr {best.params['lr']:.2g}, weight decay "
             f"{best.params['weight_decay']:.2g} -> loss {best.value:.3f} (from {initial:.3f})")
    if best.value >= initial:
        return TestResult("hyperparameter_search", "warn",
                          f"{found}: no trial lowered the loss in {SEARCH_STEPS} steps; the model may need a "
                          "learning rate outside the searched range, or it does not train (see training_loop)",
                          metrics)
    return TestResult("hyperparameter_search", "pass", found, metrics)


# =================================================================================================
# benchmark
# =================================================================================================

def benchmark(model: nn.Module, config: Any) -> TestResult:
    """Forward-only throughput (no gradients) of the model and of a same-size reference TinyDecoder."""
    device = modelio.device_of(model)
    input_ids = modelio.random_tokens(model, config, BENCH_BATCH, min(modelio.max_seq_len(config), BENCH_SEQ))
    with torch.device(device):  # built where it runs: initialising a large reference on the CPU is slow
        reference = reference_model(model, config).train(model.training)
    own = forward_tokens_per_second(model, input_ids)
    baseline = forward_tokens_per_second(reference, input_ids)
    ratio = own / baseline
    metrics = {
        "tokens_per_s_forward": own,
        "reference_tokens_per_s_forward": baseline,
        "speed_ratio": ratio,
        "parameters": parameter_count(model),
        "reference_parameters": parameter_count(reference),
        "reference_d_model": reference.token_embedding.embedding_dim,
        "batch": BENCH_BATCH,
        "seq": input_ids.shape[1],
    }
    found = (f"forward pass {own:,.0f} tokens/s, {ratio:.2f}x a TinyDecoder of "
             f"{metrics['reference_parameters']:,} parameters ({baseline:,.0f} tokens/s) on {device.type}")
    if ratio < SLOW_RATIO:
        return TestResult("benchmark", "warn",
                          f"{found}: much slower than a plain transformer of the same size; look for Python loops "
                          "over positions or heads, work repeated per call, or tensors moved between devices in "
                          "forward", metrics)
    return TestResult("benchmark", "pass", found, metrics)


def forward_tokens_per_second(model: nn.Module, input_ids: torch.Tensor) -> float:
    # torch.utils.benchmark handles warm-up and CUDA synchronisation; it defaults to one thread,
    # so give it the kernel's thread count to time what the notebook would actually see.
    from torch.utils import benchmark as torch_benchmark

    def forward_pass() -> None:
        with torch.no_grad():
            modelio.forward(model, input_ids)

    timer = torch_benchmark.Timer(stmt="forward_pass()", globals={"forward_pass": forward_pass},
                                  num_threads=torch.get_num_threads())
    seconds = timer.blocked_autorange(min_run_time=BENCH_MIN_RUN_TIME_S).median
    return input_ids.numel() / seconds


def reference_model(model: nn.Module, config: Any) -> TinyDecoder:
    """A freshly initialised TinyDecoder with the model's vocabulary and about its parameter count."""
    vocab = modelio.vocab_size(model, config)
    max_len = modelio.max_seq_len(config)
    layers = int(modelio.config_get(config, LAYER_FIELDS, REFERENCE_DEFAULT_LAYERS))

    def build(d_model: int) -> TinyDecoder:
        return TinyDecoder(vocab, d_model, REFERENCE_HEADS, layers, max_len)

    def count(d_model: int) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            return parameter_count(build(d_model))

    # TinyDecoder's parameter count is a quadratic in d_model (d x d attention and feed-forward
    # matrices with d_ff = 4d, d x vocab and d x max_len embeddings, d-long norms and biases), so three
    # sizes fix its coefficients exactly and the positive root gives the d_model that matches.
    sizes = (16, 32, 48)
    powers = torch.tensor([[d * d, d, 1] for d in sizes], dtype=torch.float64, device="cpu")
    counts = torch.tensor([count(d) for d in sizes], dtype=torch.float64, device="cpu")
    a, b, c = torch.linalg.solve(powers, counts).tolist()
    target = parameter_count(model)
    d_model = (-b + math.sqrt(max(b * b - 4 * a * (c - target), 0.0))) / (2 * a)
    step = 4 * REFERENCE_HEADS  # keeps the head size a multiple of 4
    return build(max(step, round(d_model / step) * step))


TESTS: dict[str, Callable[[Any, Any], TestResult]] = {
    "training_loop": training_loop,
    "hyperparameter_search": hyperparameter_search,
    "benchmark": benchmark,
}


def run(model: nn.Module, config: Any) -> TierResult:
    return run_tier("tier3", TESTS, model, config)
