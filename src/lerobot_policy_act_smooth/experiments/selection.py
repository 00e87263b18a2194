"""Which trial of a stage wins: final training loss, divergence and the selection rule.

Pure functions over recorded loss curves (the `loss` column of a trial's loss.csv, one value
per lerobot-train log line, each already the mean over `log_freq` steps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Defaults of the plan's [selection] section.
FINAL_LOSS_WINDOW = 5
DIVERGENCE_FACTOR = 3.0


def final_loss(losses: Sequence[float], window: int = FINAL_LOSS_WINDOW) -> float:
    """Mean of the last `window` logged losses (fewer if fewer were logged); nan if none.

    Any non-finite value inside the window makes the result non-finite, on purpose: a run that
    produced nan at the end has not converged to anything.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(losses) == 0:
        return math.nan
    tail = [float(x) for x in losses[-window:]]
    return sum(tail) / len(tail)


def divergence_reason(
    losses: Sequence[float], window: int = FINAL_LOSS_WINDOW, factor: float = DIVERGENCE_FACTOR,
    from_scratch: bool = True,
) -> str | None:
    """Why a loss curve counts as diverged, or None if it does not.

    Diverged when (checked in this order):
      - no loss was logged or the final loss (see `final_loss`) is nan/inf;
      - the final loss is above `factor` times the lowest logged loss (it got far worse than its best);
      - the final loss is above the first logged loss (training made it worse than at the start);
        only for a run from scratch: a fine-tune starts near its best, so its first loss is no bar.
    """
    end = final_loss(losses, window)
    if not math.isfinite(end):
        return "no finite final loss" if len(losses) else "no loss logged"
    finite = [float(x) for x in losses if math.isfinite(float(x))]
    best = min(finite)
    if end > factor * best:
        return f"final loss {end:.4g} > {factor:g} x lowest loss {best:.4g}"
    first = float(losses[0])
    if from_scratch and math.isfinite(first) and end > first:
        return f"final loss {end:.4g} > first logged loss {first:.4g}"
    return None


@dataclass
class Candidate:
    """One finished trial as the selection sees it."""

    name: str
    losses: Sequence[float]
    metrics: Mapping[str, float] | None = None  # e.g. {"self_chaining.U_a_mean": 0.12}


@dataclass
class Selection:
    winner: str | None
    rule_used: str  # "final_loss" or the metric name actually used
    final_losses: dict[str, float]
    diverged: dict[str, str]  # name -> reason
    note: str = ""


def select_winner(
    candidates: Sequence[Candidate],
    rule: str = "final_loss",
    window: int = FINAL_LOSS_WINDOW,
    factor: float = DIVERGENCE_FACTOR,
    from_scratch: bool = True,
) -> Selection:
    """The candidate with the lowest final loss (rule "final_loss") or lowest metric (rule = a metric
    name such as "self_chaining.U_a_mean"), diverged candidates excluded. Ties keep plan order.

    If the metric is missing for some non-diverged candidate, the selection falls back to the final
    loss and says so in `note` (an evaluation that could not run must not block the plan).
    Winner is None when every candidate diverged.
    """
    finals = {c.name: final_loss(c.losses, window) for c in candidates}
    diverged = {}
    for c in candidates:
        reason = divergence_reason(c.losses, window, factor, from_scratch)
        if reason is not None:
            diverged[c.name] = reason
    eligible = [c for c in candidates if c.name not in diverged]
    if not eligible:
        return Selection(None, rule, finals, diverged, note="every trial diverged")
    note = ""
    rule_used = rule
    if rule != "final_loss":
        missing = [c.name for c in eligible if not _finite((c.metrics or {}).get(rule))]
        if missing:
            note = f"metric {rule} missing for {', '.join(missing)}: selected by final training loss instead"
            rule_used = "final_loss"
    if rule_used == "final_loss":
        key = {c.name: finals[c.name] for c in eligible}
    else:
        key = {c.name: float(c.metrics[rule]) for c in eligible}
    winner = min(eligible, key=lambda c: key[c.name]).name
    return Selection(winner, rule_used, finals, diverged, note)


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False
