"""Tier 3: does the model learn from its context, which learning rate suits it, and how fast is it.

``hyperparameter_search``  optuna over learning rate and weight decay on the context task, bounded by a
                           number of trials and by time (skip without optuna).
``training_loop``          overfit one fixed batch of the context task with the best learning rate found:
                           the loss must go near zero, far below what a context-blind model can reach.
``benchmark``              forward-pass tokens/s against a ``TinyDecoder`` of about the same size
                           (checks_speed.py).

The context task (``context_task``): every sequence alternates two tokens, ``a b a b ...``, one sequence
per ordered pair of ``CONTEXT_TOKENS`` tokens. The next token is the one two positions back, so a model
that uses earlier tokens can drive the loss to zero; a model that sees only its current token (and its
position) cannot tell which of the other tokens follows, and stays at ``context_blind_loss`` (here
ln(CONTEXT_TOKENS - 1), computed from the data). "The loss fell" is not enough: a model that ignores
its context still learns which tokens occur (ln 5 is 77% below ln 1000).

Training always happens on a deep copy, so the user's model is left exactly as it was. ``run``
searches first and trains with the best learning rate. Every test is ``test(model, config) -> TestResult``.
``loss_curve_html()`` renders the last ``training_loop`` losses (empty without matplotlib).
"""

from __future__ import annotations

import base64
import copy
import io
import math
import time
import warnings
from collections import Counter
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from . import modelio
from .checks_speed import benchmark
from .optional import skip_missing, try_import
from .results import TestResult, TierResult, timed
from .running import model_environment

# --- the context task and the training runs -------------------------------------------------------
CONTEXT_TOKENS = 5  # 5 * 4 = 20 sequences; a context-blind model cannot beat ln(4) = 1.39
TRAIN_SEQ = 32
TRAIN_STEPS = 200  # at most; training stops once the loss is below TARGET_LOSS
TRAIN_TIMEOUT_S = 60.0  # or once this much time has passed (a large model on a CPU)
TARGET_LOSS = 0.05
DEFAULT_LR = 3e-3  # used when the search did not run, unless the config has learning_rate / lr
GRAD_CLIP = 1.0
FINAL_WINDOW = 5  # the final loss is the mean of the last steps, so one noisy step does not decide
# The final loss must be at least this share below the initial loss (log(vocab) at initialisation).
MIN_LOSS_DROP = 0.2
# Shares of the context-blind loss: at or above IGNORES_CONTEXT the model did not use its context (fail);
# above NEAR_ZERO it used some but did not overfit one batch in TRAIN_STEPS steps (warn).
IGNORES_CONTEXT = 0.9
NEAR_ZERO = 0.2

# --- hyperparameter_search ----------------------------------------------------------------------
SEARCH_TRIALS = 10
SEARCH_STEPS = 30
SEARCH_TIMEOUT_S = 60.0  # the search stops starting trials after this, and cuts a trial that runs past it
LR_RANGE = (1e-4, 3e-2)
WEIGHT_DECAY_RANGE = (1e-4, 1e-1)
# Tried first, in this order: an even log-spaced cover of the learning rates that matter, so TPE (which
# would otherwise spend its start-up trials on random search) models the loss from informative points.
SEARCH_GRID = (1e-2, 3e-3, 1e-3, 3e-4)
GRID_WEIGHT_DECAY = 1e-2


# The per-step losses of the latest training_loop run, for loss_curve_html().
loss_curve: list[float] = []


# =================================================================================================
# the context task
# =================================================================================================

def context_task(model: nn.Module, config: Any, seq: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, next-token targets), one alternating sequence per ordered pair of distinct tokens."""
    vocab = modelio.vocab_size(model, config)
    tokens = min(CONTEXT_TOKENS, vocab)
    generator = torch.Generator().manual_seed(seed)
    alphabet = torch.randperm(vocab, generator=generator)[:tokens]
    pairs = torch.tensor([(a, b) for a in range(tokens) for b in range(tokens) if a != b] or [(0, 0)])
    walks = alphabet[pairs[:, torch.arange(seq + 1) % 2]]
    inputs, targets = walks[:, :-1].contiguous(), walks[:, 1:].contiguous()  # nanoGPT calls targets.view(-1)
    return modelio.to_model(inputs, model, config), targets.to(modelio.device_of(model))


def context_blind_loss(inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The lowest loss a model seeing only (position, current token) can reach on this batch.

    That is the conditional entropy of the target given (position, token) over the scored positions,
    computed from the data: such a model can do no better than predict each group's target frequencies.
    """
    keys = Counter()
    joint = Counter()
    for row_in, row_out in zip(inputs[:, 1:].tolist(), targets[:, 1:].tolist()):
        for position, (token, target) in enumerate(zip(row_in, row_out)):
            keys[(position, token)] += 1
            joint[(position, token, target)] += 1
    total = sum(keys.values())
    return -sum(count / total * math.log(count / keys[key[:2]]) for key, count in joint.items()) if total else 0.0


def _task_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # Position 0 is not scored: which token follows the first one cannot be known from one token.
    return F.cross_entropy(logits[:, 1:].reshape(-1, logits.shape[-1]).float(), targets[:, 1:].reshape(-1))


def train_copy(model: nn.Module, config: Any, steps: int, lr: float, weight_decay: float = 0.0, seed: int = 0,
               target_loss: float | None = None, after_step: Callable[[int, float], bool] | None = None) -> list[float]:
    """Train a deep copy of ``model`` on the context task; the per-step losses.

    Stops at NaN/Inf, when the loss falls below ``target_loss``, or when ``after_step(step, loss)``
    returns True (the search's pruning and deadline).
    """
    device = modelio.device_of(model)
    student = copy.deepcopy(model).train()
    parameters = [p for p in student.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    inputs, targets = context_task(model, config, min(modelio.max_seq_len(config), TRAIN_SEQ), seed)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    vocab = modelio.vocab_size(model, config)
    losses: list[float] = []
    # A private RNG state: dropout is reproducible and the user's own random stream is untouched.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for step in range(steps):
            loss = _task_loss(modelio.forward(student, inputs, vocab), targets)
            losses.append(loss.item())
            if not math.isfinite(losses[-1]) or (target_loss is not None and losses[-1] < target_loss):
                break
            if after_step is not None and after_step(step, losses[-1]):
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, GRAD_CLIP)
            optimizer.step()
    return losses


def _final_loss(losses: Sequence[float]) -> float:
    """The last loss when training stopped at the target, else the mean of the last few steps."""
    if losses and losses[-1] < TARGET_LOSS:
        return losses[-1]
    tail = losses[-FINAL_WINDOW:]
    return sum(tail) / len(tail)


def _area_under_curve(losses: Sequence[float], steps: int) -> float:
    """Mean loss over ``steps`` steps, a run that stopped at the target keeping its last loss: rewards
    learning fast as well as ending low, and is far less noisy than the last loss alone."""
    return (sum(losses) + (steps - len(losses)) * losses[-1]) / steps


# =================================================================================================
# training_loop
# =================================================================================================

def training_loop(model: nn.Module, config: Any, lr: float | None = None) -> TestResult:
    """Overfit one fixed batch of the context task with ``lr`` (the search's best when ``run`` calls it)."""
    from_search = lr is not None
    if lr is None:
        lr = float(modelio.config_get(config, ("learning_rate", "lr"), DEFAULT_LR))
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    losses = train_copy(model, config, TRAIN_STEPS, lr, target_loss=TARGET_LOSS,
                        after_step=lambda step, loss: time.monotonic() > deadline)
    loss_curve[:] = losses
    timed_out = len(losses) < TRAIN_STEPS and losses[-1] >= TARGET_LOSS and math.isfinite(losses[-1])
    inputs, targets = context_task(model, config, min(modelio.max_seq_len(config), TRAIN_SEQ))
    blind = context_blind_loss(inputs.cpu(), targets.cpu())
    initial, final = losses[0], _final_loss(losses)
    metrics = {
        "steps": len(losses),
        "lr": lr,
        "lr_from_search": int(from_search),
        "initial_loss": initial,
        "final_loss": final,
        "context_blind_loss": blind,
        "perplexity": math.exp(final) if math.isfinite(final) and final < 700 else None,  # exp overflows past ~709
        "loss_drop": (initial - final) / initial if initial else None,
        "target_reached": int(losses[-1] < TARGET_LOSS),
        "timed_out": int(timed_out),
    }
    where = f"lr {lr:g}{' from the search' if from_search else ''}"
    if not math.isfinite(final):
        return TestResult("training_loop", "fail",
                          f"the loss became NaN/Inf at step {len(losses) - 1} ({where}): look for exploding "
                          "gradients, log of 0, or a learning rate that is too high", metrics)
    found = (f"loss {initial:.3f} -> {final:.3f} in {len(losses)} steps on one fixed batch ({where}); a model blind "
             f"to its context cannot go below {blind:.3f} there")
    if timed_out and final > NEAR_ZERO * blind:
        return TestResult("training_loop", "warn",
                          f"training stopped by the {TRAIN_TIMEOUT_S:g} s limit after {len(losses)} of {TRAIN_STEPS} "
                          f"steps: {found}; too slow here to say whether it uses its context (a GPU runtime, DEVICE = "
                          "'auto', or a smaller model would tell)", metrics)
    if final > initial * (1 - MIN_LOSS_DROP):
        return TestResult("training_loop", "fail",
                          f"the loss did not fall: {initial:.3f} -> {final:.3f} in {len(losses)} AdamW steps ({where}) "
                          f"on one fixed batch; check that parameters receive gradients (nothing detached or frozen) "
                          "and that the logits depend on the input", metrics)
    if blind > 0 and final >= IGNORES_CONTEXT * blind:
        return TestResult("training_loop", "fail",
                          f"the model ignores its context: {found}, and this one stayed there. Each next token here is the "
                          "one two positions back, so only a model that uses earlier tokens can learn it: check that "
                          "attention (or whatever mixes positions) reaches the output, with a causal mask that "
                          "lets each position see its past", metrics)
    if blind > 0 and final > NEAR_ZERO * blind:
        return TestResult("training_loop", "warn",
                          f"the model uses its context but did not overfit one batch: {found}, and it should reach "
                          f"near 0 in {TRAIN_STEPS} steps; it may need more steps or a different learning rate",
                          metrics)
    return TestResult("training_loop", "pass", f"{found}: it uses earlier tokens", metrics)


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
    """TPE over (learning rate, weight decay) after a log-spaced grid of learning rates; median pruning.

    Bounded by ``SEARCH_TRIALS`` trials and ``SEARCH_TIMEOUT_S`` seconds, whichever comes first. Each
    trial trains up to ``SEARCH_STEPS`` steps on the context task (fewer once the loss is below
    ``TARGET_LOSS``) and scores the mean loss over those steps; a trial whose loss is worse than the
    median of earlier trials at the same step is pruned. Why not random search: with ten trials over
    a learning rate spanning two decades, random points cluster and leave gaps; the grid covers the
    range evenly, then TPE refines around the best region.
    """
    optuna = try_import("optuna")
    if optuna is None:
        return skip_missing("hyperparameter_search", "optuna", "Tier 3 hyperparameter search")
    start = time.monotonic()
    deadline = start + SEARCH_TIMEOUT_S

    def objective(trial: Any) -> float:
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        weight_decay = trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)

        def after_step(step: int, loss: float) -> bool:
            trial.report(loss, step)
            return trial.should_prune() or time.monotonic() > deadline

        losses = train_copy(model, config, SEARCH_STEPS, lr, weight_decay, target_loss=TARGET_LOSS,
                            after_step=after_step)
        trial.set_user_attr("initial_loss", losses[0])
        trial.set_user_attr("final_loss", _final_loss(losses))
        finished = len(losses) == SEARCH_STEPS or losses[-1] < TARGET_LOSS
        if not math.isfinite(losses[-1]) or not finished:
            raise optuna.TrialPruned()  # diverged, pruned or out of time: recorded, not a search-stopping error
        return _area_under_curve(losses, SEARCH_STEPS)

    # optuna logs every trial at INFO and a trial that raises, with its traceback, at WARNING; the raise
    # reaches this test's result anyway. Keep the cell quiet and restore the user's setting afterwards.
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Multivariate TPE (lr and weight decay modelled jointly) is marked experimental in optuna 4:
            # documented and stable, and not worth a warning in every user's notebook.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=len(SEARCH_GRID), multivariate=True)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=len(SEARCH_GRID), n_warmup_steps=SEARCH_STEPS // 3)
        study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
        for lr in SEARCH_GRID:
            study.enqueue_trial({"lr": lr, "weight_decay": GRID_WEIGHT_DECAY})
        study.optimize(objective, n_trials=SEARCH_TRIALS, timeout=SEARCH_TIMEOUT_S)
    finally:
        optuna.logging.set_verbosity(verbosity)

    elapsed = time.monotonic() - start
    states = optuna.trial.TrialState
    completed = [t for t in study.trials if t.state == states.COMPLETE]
    metrics: dict[str, float | int | None] = {
        "trials": len(study.trials), "completed_trials": len(completed),
        "pruned_trials": sum(t.state == states.PRUNED for t in study.trials),
        "search_s": elapsed, "timed_out": int(len(study.trials) < SEARCH_TRIALS),
    }
    bound = (f" (stopped by the {SEARCH_TIMEOUT_S:g} s limit after {len(study.trials)} trials)"
             if metrics["timed_out"] else "")
    if not completed:
        return TestResult("hyperparameter_search", "fail",
                          f"no trial finished: all {len(study.trials)} diverged to NaN/Inf loss or were cut for time "
                          f"for learning rates in {LR_RANGE[0]:g}-{LR_RANGE[1]:g}{bound}: the model cannot be trained "
                          "stably, or one training step takes too long here", metrics)
    best = study.best_trial
    initial = float(best.user_attrs["initial_loss"])
    best_loss = float(best.user_attrs["final_loss"])
    metrics.update(best_lr=best.params["lr"], best_weight_decay=best.params["weight_decay"],
                   best_loss=best_loss, best_mean_loss=best.value, initial_loss=initial)
    found = (f"best of {len(completed)} finished trials ({metrics['pruned_trials']} pruned early){bound}: lr "
             f"{best.params['lr']:.2g}, weight decay {best.params['weight_decay']:.2g} -> loss {best_loss:.3f} "
             f"(from {initial:.3f}) within {SEARCH_STEPS} steps")
    if best_loss >= initial:
        return TestResult("hyperparameter_search", "warn",
                          f"{found}: no trial lowered the loss; the model may need a learning rate outside the searched "
                          "range, or it does not train (see training_loop)", metrics)
    return TestResult("hyperparameter_search", "pass", found + "; training_loop uses this learning rate", metrics)


TESTS: dict[str, Callable[[Any, Any], TestResult]] = {
    "hyperparameter_search": hyperparameter_search,
    "training_loop": training_loop,
    "benchmark": benchmark,
}


def run(model: nn.Module, config: Any) -> TierResult:
    """The search first; training_loop then uses the best learning rate it found (when it found one)."""
    search = timed("hyperparameter_search", lambda: hyperparameter_search(model, config))
    best_lr = search.metrics.get("best_lr") if search.status == "pass" else None
    training = timed("training_loop", lambda: training_loop(model, config, lr=best_lr))
    speed = timed("benchmark", lambda: benchmark(model, config))
    return TierResult("tier3", [search, training, speed], model_environment(model))
