"""Stand-ins for a ChunkPredictor (lerobot_policy_act_smooth.inference) with outputs known in
advance, so that replay's stitching can be checked against sequences derived by hand."""

from __future__ import annotations

import numpy as np


class StandInPredictor:
    """Stands in for a trained act_smooth (or, with policy_type="act", LeRobot act) checkpoint.

    behaviour:
      "repeat_last"  every chunk action = the last prefix action (committed[:, -1]); for act, 0.
      "ramp"         chunk action j = committed[:, -1] + step * (j + 1): continues a line.
      "obs_frame"    every chunk action = the observation's frame number (observe returns it).
    Records the arguments of every predict() call in ``calls``.
    """

    def __init__(self, behaviour="repeat_last", past_length=2, max_delay=2, chunk_size=5,
                 n_action_steps=5, action_dim=2, policy_type="act_smooth", step=1.0):
        self.behaviour = behaviour
        self.policy_type = policy_type
        self.past_length = past_length if policy_type != "act" else 0
        self.max_delay = max_delay if policy_type != "act" else 0
        self.chunk_size = chunk_size
        self.n_action_steps = n_action_steps
        self.action_dim = action_dim
        self.input_features = {"observation.state": (1,)}
        self.use_action_relative = False
        self.step = step
        self.calls = []

    def predict(self, observation, past_actions, committed_actions):
        B = observation["observation.state"].shape[0]
        self.calls.append({
            "frames": observation["observation.state"][:, 0].copy(),
            "past": np.array(past_actions, copy=True),
            "committed": np.array(committed_actions, copy=True),
        })
        C, A = self.chunk_size, self.action_dim
        if self.behaviour == "obs_frame":
            return np.repeat(observation["observation.state"][:, None, :1], C, axis=1).repeat(A, axis=2)
        if self.policy_type == "act":
            last = np.zeros((B, A))
        else:
            last = committed_actions[:, -1]
        if self.behaviour == "repeat_last":
            return np.repeat(last[:, None, :], C, axis=1)
        if self.behaviour == "ramp":
            return last[:, None, :] + self.step * np.arange(1, C + 1)[None, :, None]
        raise ValueError(self.behaviour)


def frame_observer(frames):
    """observe(frames): the observation of frame f is just [f] (stands in for dataset frames)."""
    return {"observation.state": np.asarray(frames, dtype=np.float32)[:, None]}
