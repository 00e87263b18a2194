"""ACTSmooth: ACT conditioned on an action prefix, as a LeRobot policy plugin.

Importing this package registers the policy type "act_smooth" with LeRobot. The modeling and
processor modules are found by LeRobot's naming convention; they are imported lazily here so that
`import lerobot_policy_act_smooth` stays light.
"""

from .configuration_act_smooth import ACTSmoothConfig

__all__ = ["ACTSmoothConfig", "ACTSmoothPolicy", "make_act_smooth_pre_post_processors"]


def __getattr__(name):
    if name == "ACTSmoothPolicy":
        from .modeling_act_smooth import ACTSmoothPolicy

        return ACTSmoothPolicy
    if name == "make_act_smooth_pre_post_processors":
        from .processor_act_smooth import make_act_smooth_pre_post_processors

        return make_act_smooth_pre_post_processors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
