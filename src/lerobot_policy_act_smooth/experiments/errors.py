"""The error of a plan that cannot run. It lives apart from plan.py because the modules the plan
reader relies on raise it too (hub.py, when a hub dataset cannot be fetched): they import it from
here, and plan.py imports them, so no import runs in a circle."""


class PlanError(ValueError):
    """A plan that cannot run; the message names every problem and how to fix it."""
