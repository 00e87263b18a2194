"""Winner selection and divergence detection on recorded loss curves (pure functions)."""

import math

import pytest

from lerobot_policy_act_smooth.experiments.selection import (
    Candidate,
    divergence_reason,
    final_loss,
    select_winner,
)


def test_final_loss_is_mean_of_last_window():
    assert final_loss([5.0, 4.0, 3.0, 2.0, 1.0], window=2) == pytest.approx(1.5)
    assert final_loss([2.0, 1.0], window=5) == pytest.approx(1.5)  # fewer logged than the window
    assert math.isnan(final_loss([], window=3))
    assert math.isnan(final_loss([1.0, 0.5, float("nan")], window=2))


def test_divergence_rules():
    decreasing = [1.0, 0.5, 0.3, 0.2, 0.2]
    assert divergence_reason(decreasing, window=2, factor=3.0) is None
    # like the plan's lr 3e-4: went down to 0.1, ended near 0.78
    blown_up = [1.0, 0.3, 0.1, 0.5, 0.78, 0.8]
    assert "lowest" in divergence_reason(blown_up, window=2, factor=3.0)
    # never got better than at the start
    worse = [0.5, 0.45, 0.6, 0.7]
    assert "first" in divergence_reason(worse, window=2, factor=3.0)
    # a fine-tune starts near its best: ending a little above its first loss is no divergence,
    # blowing up still is
    assert divergence_reason([0.11, 0.13, 0.12, 0.115], window=2, factor=3.0, from_scratch=False) is None
    assert "lowest" in divergence_reason([0.11, 0.1, 0.5, 0.6], window=2, factor=3.0, from_scratch=False)
    assert "finite" in divergence_reason([1.0, float("inf")], window=1)
    assert divergence_reason([], window=1) == "no loss logged"


def test_winner_lowest_final_loss_excluding_diverged():
    curves = {
        "lr_1e-05": [1.0, 0.30, 0.20, 0.116, 0.116],
        "lr_3e-05": [1.0, 0.25, 0.12, 0.091, 0.089],
        "lr_5e-05": [1.0, 0.24, 0.11, 0.095, 0.093],
        # lowest final loss of all, but it spiked far above its best: diverged, must not win
        "lr_3e-04": [1.0, 0.01, 0.05, 0.06, 0.07],
    }
    sel = select_winner([Candidate(k, v) for k, v in curves.items()], window=2, factor=3.0)
    assert sel.winner == "lr_3e-05"
    assert set(sel.diverged) == {"lr_3e-04"}
    assert sel.final_losses["lr_3e-05"] == pytest.approx(0.09)


def test_tie_keeps_plan_order():
    sel = select_winner([Candidate("a", [1.0, 0.5]), Candidate("b", [1.0, 0.5])], window=1)
    assert sel.winner == "a"


def test_metric_rule_and_fallback():
    cands = [
        Candidate("p0.1", [1.0, 0.10], {"self_chaining.U_a_mean": 0.35}),
        Candidate("p0.3", [1.0, 0.12], {"self_chaining.U_a_mean": 0.28}),
    ]
    assert select_winner(cands, rule="self_chaining.U_a_mean", window=1).winner == "p0.3"
    cands[1].metrics = {}
    sel = select_winner(cands, rule="self_chaining.U_a_mean", window=1)
    assert sel.winner == "p0.1" and sel.rule_used == "final_loss" and "missing" in sel.note


def test_all_diverged_gives_no_winner():
    sel = select_winner([Candidate("x", [1.0, float("nan")]), Candidate("y", [0.5, 2.0])], window=1)
    assert sel.winner is None and len(sel.diverged) == 2
