"""ACTSmooth: ACT conditioned on an action prefix, as a LeRobot policy plugin.

Importing this package registers the policy type "act_smooth", the simulated robot type
"so101_sim" (sim/config_so101_sim.py) and the simulated task as env type "so101_sim"
(sim/lerobot_env.py) with LeRobot; MuJoCo loads only when a robot connects or an env is made. The modeling and
processor modules are found by LeRobot's naming convention; they are imported lazily here so that
`import lerobot_policy_act_smooth` stays light.
"""

from .configuration_act_smooth import ACTSmoothConfig
from .sim import config_so101_sim  # noqa: F401  registers robot type "so101_sim"
from .sim import lerobot_env  # noqa: F401  registers env type "so101_sim" (lerobot-eval)

__all__ = ["ACTSmoothConfig", "ACTSmoothPolicy", "make_act_smooth_pre_post_processors"]


def __getattr__(name):
    if name == "ACTSmoothPolicy":
        from .modeling_act_smooth import ACTSmoothPolicy

        return ACTSmoothPolicy
    if name == "make_act_smooth_pre_post_processors":
        from .processor_act_smooth import make_act_smooth_pre_post_processors

        return make_act_smooth_pre_post_processors
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
