"""Smoothness metrics of the research plan, as pure functions over action arrays.

Conventions shared by every function here: those of the original ACTSmooth evaluation script
(pandas), so that our figures and the earlier run's can sit in one table (research-plan.md).

- ``actions`` is a ``[T, J]`` array: T frames recorded at a fixed fps, J joints, joint
  positions in degrees. Differences are taken per joint along the frame axis.
- First differences ``v[i] = x[i+1] - x[i]`` (deg/frame), shape ``[T-1, J]``.
- Second differences ``a[i] = x[i+2] - 2 x[i+1] + x[i]`` (deg/frame^2), shape ``[T-2, J]``.
  Like pandas' ``diff().diff()``, ``a[i]`` is labelled with the later end of its backward
  difference, frame ``f = i + 2``: ``x[f] - 2 x[f-1] + x[f-2]`` belongs to frame f.
- Variances are sample variances (``ddof=1``, pandas' default), per joint; U_v and U_a take
  the maximum over joints.
- ``boundaries`` are frame indices into ``actions`` where a chunk starts, the first
  chunk's start already left out by the caller (it is not a junction between chunks).

Boundary spike window: an acceleration labelled f is "within +-window of a boundary b" when
``b - window <= f <= b + window``, i.e. rows ``i = f - 2`` in ``[b - window - 2, b + window - 2]``
(clipped to ``[0, T-3]``). With the default window 2 that is five accelerations per boundary.
A jump between ``x[b-1]`` and ``x[b]`` (the join of two chunks) shows up in the accelerations
labelled b and b+1 (rows b-2 and b-1), both inside the window. Windows of nearby boundaries are
merged (each acceleration is counted once).

Worked example (docs/evaluation.md has it too): T = 20 frames, one boundary b = 10. The
accelerations are rows 0..17, labelled frames 2..19; the window holds labels 8..12 = rows 6..10;
the other 13 rows are the rest.

Transition window (issue 17): the +-2 spike is the plan's, kept for comparison with the earlier
run. A join head (``prefix_join_horizon`` H) continues the prefix for its first frames and pulls onto
its decoded chunk over labels b+3 .. b+H, where the +-2 window cannot see it. The transition spike
uses labels ``b - 2 .. b + TRANSITION_AFTER`` (12 = the longest transition of any variant in the
plans, H = 10 or a 10-frame blending crossfade, + 2), rows ``b - 4 .. b + 10``.

Boundary-locked profile: entry o of :func:`boundary_profiles` (offset ``o - half_width``) is the mean
over joints and boundaries of ``|a|`` labelled ``b + offset``. Third differences
``x[f] - 3 x[f-1] + 3 x[f-2] - x[f-3]`` (deg/frame^3) are labelled f like the second ones (row
``f - 3``). A jump between ``x[b-1]`` and ``x[b]`` shows in the profile of second differences at
offsets 0 and +1, in the third differences' at 0, +1 and +2.

Movement smoothness (:func:`movement_smoothness`): SPARC and LDLJ of the whole sequence, all joints
together (speed = Euclidean norm over joints of the velocity, deg/s; the fps converts frames to
seconds). Replan discontinuity (:func:`replan_discontinuity`): how much a new chunk differs from the
old chunk on the frames both predicted, apart from how the stitched sequence is executed.

Across episodes, :func:`aggregate` reports the mean and the sample std (``ddof=1``, pandas'
``.std()``; NaN for a single episode).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

SPIKE_WINDOW = 2
# Labels after a boundary the transition spike covers: the longest transition of any variant in the
# plans (prefix_join_horizon 10, or a blending crossfade of 10 frames) + 2.
TRANSITION_AFTER = 12
# Offsets -15 .. +15 of the boundary-locked profile.
PROFILE_HALF_WIDTH = 15
PROFILE_KEYS = ("profile_speed", "profile_acc", "profile_jerk")


def _as_actions(actions) -> np.ndarray:
    x = np.asarray(actions, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"actions must be [T, J] (frames, joints), got shape {x.shape}")
    return x


def velocities(actions) -> np.ndarray:
    """First differences per joint. [T, J] deg -> [T-1, J] deg/frame."""
    return np.diff(_as_actions(actions), n=1, axis=0)


def accelerations(actions) -> np.ndarray:
    """Second differences per joint. [T, J] deg -> [T-2, J] deg/frame^2; row i is labelled frame i+2."""
    return np.diff(_as_actions(actions), n=2, axis=0)


def velocity_variance(actions) -> float:
    """U_v: max over joints of var(v), sample variance (ddof=1). [T, J] deg -> deg^2/frame^2 (T >= 3)."""
    v = velocities(actions)
    if v.shape[0] < 2:
        raise ValueError("U_v needs at least 3 frames")
    return float(np.max(np.var(v, axis=0, ddof=1)))


def acceleration_variance(actions) -> float:
    """U_a: max over joints of var(a), sample variance (ddof=1). [T, J] deg -> deg^2/frame^4 (T >= 4)."""
    a = accelerations(actions)
    if a.shape[0] < 2:
        raise ValueError("U_a needs at least 4 frames")
    return float(np.max(np.var(a, axis=0, ddof=1)))


def mean_abs_velocity(actions) -> float:
    """mu_v: mean |v| over joints and frames. [T, J] deg -> deg/frame (T >= 2)."""
    v = velocities(actions)
    if v.shape[0] < 1:
        raise ValueError("mu_v needs at least 2 frames")
    return float(np.mean(np.abs(v)))


def boundary_acceleration_mask(
    num_frames: int, boundaries: Iterable[int], window: int = SPIKE_WINDOW, after: int | None = None
) -> np.ndarray:
    """Boolean [num_frames - 2] mask over second-difference rows whose label frame (row + 2) is
    within ``b - window .. b + after`` of some boundary b; ``after=None`` means ``after = window``
    (the symmetric +-window of the plan). See the module docstring for the index mapping."""
    after = window if after is None else after
    mask = np.zeros(max(num_frames - 2, 0), dtype=bool)
    for b in boundaries:
        lo = max(int(b) - window - 2, 0)
        hi = min(int(b) + after - 2, num_frames - 3)
        if lo <= hi:
            mask[lo : hi + 1] = True
    return mask


def _spike(abs_acc: np.ndarray, mask: np.ndarray) -> dict:
    near, far = abs_acc[mask], abs_acc[~mask]
    boundary_mean = float(near.mean()) if near.size else math.nan
    other_mean = float(far.mean()) if far.size else math.nan
    if math.isnan(boundary_mean) or math.isnan(other_mean):
        spike = math.nan
    elif other_mean == 0.0:
        spike = math.inf if boundary_mean > 0.0 else math.nan
    else:
        spike = boundary_mean / other_mean
    return {"spike": spike, "boundary_mean": boundary_mean, "other_mean": other_mean}


def boundary_spike(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """Boundary spike of a stitched action sequence: the plan's spike (+-window, default 2), kept
    for comparison with the earlier run; :func:`transition_spike` covers a join's whole transition.

    actions: [T, J] deg. boundaries: frame indices where a chunk starts (first chunk left out).
    Returns ``{"spike", "boundary_mean", "other_mean"}``: mean |a| (deg/frame^2, over joints and
    the selected frames) near boundaries, over all other frames, and their ratio (dimensionless;
    1.0 = no boundary artefact). The ratio is NaN when there is no boundary acceleration or no
    other acceleration, or both means are 0; +inf when only ``other_mean`` is 0.
    """
    a = np.abs(accelerations(actions))
    return _spike(a, boundary_acceleration_mask(a.shape[0] + 2, boundaries, window))


def transition_spike(actions, boundaries: Sequence[int], before: int = SPIKE_WINDOW,
                     after: int = TRANSITION_AFTER) -> dict:
    """The spike of :func:`boundary_spike` over the asymmetric window of labels ``b - before ..
    b + after`` (default 2 and :data:`TRANSITION_AFTER`): it holds a join head's pull onto its
    decoded chunk at b+3 .. b+H, which the +-2 window counts as "other".

    actions: [T, J] deg. Returns ``{"spike", "boundary_mean", "other_mean"}`` (x, deg/frame^2,
    deg/frame^2), NaN/inf as :func:`boundary_spike`.
    """
    a = np.abs(accelerations(actions))
    return _spike(a, boundary_acceleration_mask(a.shape[0] + 2, boundaries, before, after))


def boundary_profiles(actions, boundaries: Sequence[int], half_width: int = PROFILE_HALF_WIDTH) -> dict:
    """Boundary-locked profiles of |first|, |second| and |third difference|.

    actions: [T, J] deg; boundaries: chunk switches (frame indices). Returns
    ``{"profile_speed": [2*half_width+1] deg/frame, "profile_acc": ... deg/frame^2,
    "profile_jerk": ... deg/frame^3}``: entry o (offset ``o - half_width``) is the mean over joints
    and over the boundaries b whose label ``b + offset`` exists (1..T-1 for first differences, 2..T-1
    for second, 3..T-1 for third) of ``|x[f] - x[f-1]|``, ``|x[f] - 2 x[f-1] + x[f-2]|`` resp.
    ``|x[f] - 3 x[f-1] + 3 x[f-2] - x[f-3]|`` at ``f = b + offset``. The speed profile shows a join
    that is smooth in acceleration but slows the arm at every switch (a stop-and-go at the chunk rate).
    NaN at an offset no boundary reaches (all NaN without boundaries).
    Raises ValueError when the window of ``2*half_width+1`` frames is longer than the sequence.
    """
    x = _as_actions(actions)
    width = 2 * half_width + 1
    if half_width < 0 or width > x.shape[0]:
        raise ValueError(
            f"a profile window of {width} frames is longer than the episode ({x.shape[0]} frames); lower half_width"
        )
    offsets = np.arange(-half_width, half_width + 1)
    out = {}
    for key, order in zip(PROFILE_KEYS, (1, 2, 3)):
        d = np.abs(np.diff(x, n=order, axis=0)).mean(axis=1)  # [T - order]; row i is labelled i + order
        total, count = np.zeros(width), np.zeros(width)
        for b in boundaries:
            rows = int(b) + offsets - order
            ok = (rows >= 0) & (rows < d.shape[0])
            total[ok] += d[rows[ok]]
            count[ok] += 1
        with np.errstate(invalid="ignore"):
            out[key] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def boundary_profile_lists(actions, boundaries: Sequence[int], prefix: str = "",
                           half_width: int = PROFILE_HALF_WIDTH) -> dict:
    """:func:`boundary_profiles` as ``{prefix + key: list of floats}`` for a result file; all NaN for
    a sequence shorter than the window (an early termination: NaN as for the scalars, not an error
    that would discard the other episodes)."""
    width = 2 * half_width + 1
    if _as_actions(actions).shape[0] < width:
        found = dict.fromkeys(PROFILE_KEYS, np.full(width, np.nan))
    else:
        found = boundary_profiles(actions, boundaries, half_width)
    return {f"{prefix}{k}": [float(v) for v in found[k]] for k in PROFILE_KEYS}


def profile_peak_ratio(profile, reference) -> float:
    """Peak over offsets of ``profile / reference`` (dimensionless) where both are finite and the
    reference is > 0; NaN when no offset qualifies. profile, reference: [W] arrays of one unit
    (e.g. a variant's mean profile_acc and the demonstrations' on the same frames)."""
    p, r = np.asarray(profile, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if p.shape != r.shape:
        raise ValueError(f"profile {p.shape} and reference {r.shape} must have the same shape")
    ok = np.isfinite(p) & np.isfinite(r) & (r > 0)
    return float(np.max(p[ok] / r[ok])) if ok.any() else math.nan


def sparc(speed, fps: float, cutoff_hz: float = 10.0, amplitude_threshold: float = 0.05,
          padding_levels: int = 4) -> float:
    """Spectral arc length (SPARC) of a speed profile (Balasubramanian, Melendez-Calderon, Burdet
    2012; Balasubramanian et al. 2015).

    speed: [N] speed samples at ``fps`` (any unit: the spectrum is normalised). The magnitude of the
    FFT of the speed zero-padded to ``2^(ceil(log2 N) + padding_levels)`` samples, divided by its
    value at 0 Hz, is kept up to the adaptive cutoff f_c: the last frequency <= ``cutoff_hz`` whose
    normalised magnitude is >= ``amplitude_threshold``. SPARC is minus the arc length of the curve
    ``(f / f_c, |V(f)| / |V(0)|)`` over 0 .. f_c: dimensionless, <= 0, closer to 0 = smoother.
    NaN when nothing moved (the speed sums to 0) or when only 0 Hz passes the threshold.
    """
    v = np.asarray(speed, dtype=np.float64).ravel()
    if v.size < 2:
        raise ValueError(f"SPARC needs a speed profile of at least 2 samples, got {v.size}")
    n_fft = 2 ** (math.ceil(math.log2(v.size)) + padding_levels)
    magnitude = np.abs(np.fft.rfft(v, n_fft))
    if magnitude[0] == 0.0:
        return math.nan
    magnitude = magnitude / magnitude[0]
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / fps)
    above = np.flatnonzero((freqs <= cutoff_hz) & (magnitude >= amplitude_threshold))
    last = int(above[-1])
    if last == 0:
        return math.nan
    f = freqs[: last + 1] / freqs[last]
    m = magnitude[: last + 1]
    return -float(np.sum(np.hypot(np.diff(f), np.diff(m))))


def log_dimensionless_jerk(positions, fps: float) -> float:
    """Log dimensionless jerk (LDLJ) in Hogan & Sternad's (2009) amplitude form.

    positions: [T, J] deg at ``fps``. With jerk the third differences * fps^3 (deg/s^3), the
    duration ``D = (T - 1) / fps`` and the amplitude A = the path length in joint space (the sum of
    the Euclidean norms of the first differences, deg):
    ``DLJ = D^5 / A^2 * sum(|jerk|^2) / fps`` (the integral of |jerk|^2 as a Riemann sum),
    ``LDLJ = -ln(DLJ)``. Dimensionless, higher = smoother (a minimum-jerk reach over exactly its
    duration: -ln 720 = -6.58). The amplitude form, not the peak-speed one: dividing by the peak
    speed rewards a jump (it raises the peak), which is exactly what a chunk boundary adds.
    It grows more negative with the duration for a task of several movements (about D^4), so
    compare sequences of one task over similar durations. NaN when nothing moved; +inf when the
    jerk is exactly 0. Needs T >= 4.
    """
    x = _as_actions(positions)
    if x.shape[0] < 4:
        raise ValueError(f"LDLJ needs at least 4 frames, got {x.shape[0]}")
    path_length = float(np.sum(np.linalg.norm(np.diff(x, axis=0), axis=1)))
    if path_length == 0.0:
        return math.nan
    jerk = np.diff(x, n=3, axis=0) * fps**3
    duration = (x.shape[0] - 1) / fps
    dlj = duration**5 / path_length**2 * float(np.sum(jerk**2)) / fps
    return -math.log(dlj) if dlj > 0 else math.inf


def movement_smoothness(positions, fps: float) -> dict:
    """``{"sparc", "ldlj"}`` of one [T, J] deg sequence at ``fps``, all joints together: SPARC of the
    speed ``|first difference| * fps`` (Euclidean norm over joints, deg/s), LDLJ of the positions."""
    x = _as_actions(positions)
    speed = np.linalg.norm(np.diff(x, axis=0) * fps, axis=1)
    return {"sparc": sparc(speed, fps), "ldlj": log_dimensionless_jerk(x, fps)}


def replan_discontinuity(old_chunk, old_start: int, new_chunk, new_start: int) -> float:
    """Largest |new - old| (deg) over the frames and joints both chunks cover.

    old_chunk, new_chunk: [L, J] deg, placed at episode frames ``old_start ..`` and ``new_start ..``.
    NaN when they share no frame (e.g. chunks executed back to back, advance = chunk size).
    """
    old, new = _as_actions(old_chunk), _as_actions(new_chunk)
    if old.shape[1] != new.shape[1]:
        raise ValueError(f"chunks of {old.shape[1]} and {new.shape[1]} joints cannot be compared; pass chunks of one robot")
    lo = max(int(old_start), int(new_start))
    hi = min(int(old_start) + old.shape[0], int(new_start) + new.shape[0])
    if lo >= hi:
        return math.nan
    shared_old = old[lo - int(old_start) : hi - int(old_start)]
    shared_new = new[lo - int(new_start) : hi - int(new_start)]
    return float(np.max(np.abs(shared_new - shared_old)))


def replan_summary(chunks: Sequence[np.ndarray], starts: Sequence[int]) -> dict:
    """``{"replan_mean", "replan_max"}`` (deg): :func:`replan_discontinuity` of each consecutive pair
    of chunks (in placement order, chunk i at frame ``starts[i]``), mean and max over the pairs that
    share frames; NaN when none does."""
    if len(chunks) != len(starts):
        raise ValueError(f"{len(chunks)} chunks but {len(starts)} start frames; pass one start per chunk")
    values = [replan_discontinuity(chunks[i - 1], starts[i - 1], chunks[i], starts[i]) for i in range(1, len(chunks))]
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {"replan_mean": math.nan, "replan_max": math.nan}
    return {"replan_mean": float(np.mean(values)), "replan_max": float(np.max(values))}


def split_acceleration_variance(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW) -> dict:
    """U_a split by where the accelerations sit (issue 11): inside chunks, and at the joins.

    actions: [T, J] deg. boundaries: as for :func:`boundary_spike`. Returns
    ``{"U_a_inside", "U_a_boundary"}`` in deg^2/frame^4, each like U_a (per-joint sample variance,
    ddof=1, max over joints) but over a subset of the acceleration rows: ``U_a_inside`` over the rows
    outside every +-window boundary window (the jitter a chunk carries inside itself),
    ``U_a_boundary`` over the rows inside them (the joins). NaN where a subset has fewer than 2 rows.
    """
    a = accelerations(actions)
    mask = boundary_acceleration_mask(a.shape[0] + 2, boundaries, window)

    def max_variance(rows: np.ndarray) -> float:
        return float(np.max(np.var(rows, axis=0, ddof=1))) if rows.shape[0] >= 2 else math.nan

    return {"U_a_inside": max_variance(a[~mask]), "U_a_boundary": max_variance(a[mask])}


def mean_abs_error(pred, truth) -> float:
    """Mean |pred - truth| over frames and joints. Both [T, J] deg, same frames -> deg."""
    p, t = _as_actions(pred), _as_actions(truth)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and truth {t.shape} must have the same shape")
    return float(np.mean(np.abs(p - t)))


def smoothness_metrics(actions, boundaries: Sequence[int], window: int = SPIKE_WINDOW, fps: float = 30.0,
                       transition_after: int = TRANSITION_AFTER) -> dict:
    """U_v, U_a (whole, inside chunks, at boundaries), mu_v, the plan's +-window boundary spike, the
    transition spike (labels b-window .. b+transition_after), SPARC and LDLJ (at ``fps``) of one [T, J]
    sequence (deg), as a flat dict: ``U_v, U_a, U_a_inside, U_a_boundary, mu_v, spike,
    spike_boundary_mean, spike_other_mean, spike_transition, sparc, ldlj``. U_a_inside / U_a_boundary
    stay on the +-window."""
    spike = boundary_spike(actions, boundaries, window)
    return {
        "U_v": velocity_variance(actions),
        "U_a": acceleration_variance(actions),
        **split_acceleration_variance(actions, boundaries, window),
        "mu_v": mean_abs_velocity(actions),
        "spike": spike["spike"],
        "spike_boundary_mean": spike["boundary_mean"],
        "spike_other_mean": spike["other_mean"],
        "spike_transition": transition_spike(actions, boundaries, window, transition_after)["spike"],
        **movement_smoothness(actions, fps),
    }


def episode_metrics(pred, truth, boundaries: Sequence[int], window: int = SPIKE_WINDOW, fps: float = 30.0,
                    transition_after: int = TRANSITION_AFTER) -> dict:
    """Metrics of one episode: the prediction's (plain keys), the ground truth's over the same
    frames and boundaries (``truth_`` keys), and ``mae`` of prediction against truth (deg)."""
    out = smoothness_metrics(pred, boundaries, window, fps, transition_after)
    out.update({f"truth_{k}": v for k, v in smoothness_metrics(truth, boundaries, window, fps, transition_after).items()})
    out["mae"] = mean_abs_error(pred, truth)
    return out


def aggregate(per_episode: list[dict], exclude: Iterable[str] = ("episode",)) -> dict:
    """Mean and sample std (ddof=1, NaN for one episode) across episodes of every numeric key.

    per_episode: one flat dict per episode. Keys in ``exclude`` and non-numeric values are
    skipped; yes/no values count as 1/0, so their mean is a rate (closed loop: success).
    Returns ``{"<key>_mean": float, "<key>_std": float, ..., "num_episodes": n}``.
    """
    skip = set(exclude)
    keys: list[str] = []
    for row in per_episode:
        for k, v in row.items():
            if k in skip or k in keys:
                continue
            if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
                keys.append(k)
    out: dict = {}
    for k in keys:
        values = np.array([float(row[k]) for row in per_episode if k in row], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out[f"{k}_mean"] = float(values.mean())
            out[f"{k}_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
    out["num_episodes"] = len(per_episode)
    return out
