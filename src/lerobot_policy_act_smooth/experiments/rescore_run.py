"""`actsmooth-experiment rescore`: bring the evaluations of a run folder up to the current scorers.

An evaluation scored before a measure existed (the boundary profiles, SPARC, LDLJ, ...) lacks its
keys, and the report leaves those cells empty. Every evaluation keeps the trajectory files it
was scored from, so the missing keys can be computed from them (evaluation/rescore.py) without
re-running a policy. Nothing is trusted blindly:

- every value the evaluation already holds must come out the same from its files (else the files
  and the stored numbers disagree, and nothing is written);
- a measure that needs a file the evaluation does not have (the replan discontinuity needs the
  chunks file, written since issue 17) is one error naming the evaluation and the fix;
- every evaluation is checked before the first one is written; each file is written atomically,
  with only keys added, never a stored value changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation.rescore import RescoreError, rescore, same_value
from ..provenance import atomic_write_json


class RescoreRunError(ValueError):
    """A run folder whose evaluations cannot be brought up to date (reported as one line)."""


def _evaluations(output_dir: Path) -> list[Path]:
    out = []
    for done_file in sorted(output_dir.glob("*/*/DONE.json")):
        done = json.loads(done_file.read_text())
        for ev in done.get("evaluations", {}).values():
            if ev.get("status") == "ok" and ev.get("metrics"):
                out.append(done_file.parent / ev["metrics"])
    return out


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return same_value(a, b)
    return a == b


def _updated_rows(metrics_json: Path, replan: bool) -> list[dict] | None:
    """The stored rows with the missing keys added, or None when nothing is missing."""
    stored = json.loads(metrics_json.read_text())["episodes"]
    try:
        fresh = rescore(metrics_json, replan=replan)
    except RescoreError as e:
        raise RescoreRunError(f"{metrics_json}: {e}") from e
    if [r.get("episode") for r in stored] != [r.get("episode") for r in fresh]:
        raise RescoreRunError(f"{metrics_json}: its trajectory files hold other episodes than its metrics; "
                              "re-run that evaluation")
    changed = False
    out = []
    for old, new in zip(stored, fresh):
        for key, value in old.items():
            if key in new and not _same(value, new[key]):
                raise RescoreRunError(
                    f"{metrics_json}: episode {old.get('episode')}: stored {key} = {value!r} but its files give "
                    f"{new[key]!r}; the files do not reproduce this evaluation: re-run it instead of rescoring")
        added = {k: v for k, v in new.items() if k not in old}
        changed |= bool(added)
        out.append({**old, **added})
    return out if changed else None


def rescore_run(output_dir: str | Path, replan: bool = True) -> list[Path]:
    """Add the current scorers' missing keys to every finished evaluation of ``output_dir``;
    return the metrics files that changed. Checks everything before writing anything."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise RescoreRunError(f"{output_dir} does not exist")
    updates = {}
    for metrics_json in _evaluations(output_dir):
        rows = _updated_rows(metrics_json, replan)
        if rows is not None:
            updates[metrics_json] = rows
    for metrics_json, rows in updates.items():
        payload = json.loads(metrics_json.read_text())
        before = {k for r in payload["episodes"] for k in r}
        payload["episodes"] = rows
        payload["rescored"] = {"added_keys": sorted({k for r in rows for k in r} - before)}
        atomic_write_json(metrics_json, payload)
    return list(updates)
