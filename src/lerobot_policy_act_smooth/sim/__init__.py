"""Simulated SO-101 pick-and-place: scene, human-like demonstrator, dataset writer, gym env.

Heavy dependencies (mujoco, lerobot datasets) are imported by the submodules only:
``sim.env.SO101JointEnv``, ``sim.dataset.generate_dataset``, ``sim.dataset_cli.main``.
"""


def generate_dataset(*args, **kwargs):
    """See ``lerobot_policy_act_smooth.sim.dataset.generate_dataset``."""
    from lerobot_policy_act_smooth.sim.dataset import generate_dataset as _generate

    return _generate(*args, **kwargs)
