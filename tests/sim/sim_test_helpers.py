"""Reading simulator datasets back in tests (through LeRobot's own loader)."""

import numpy as np


def load_episode_arrays(root, repo_id="test/so101_sim"):
    """Per episode: dict of numpy arrays action [T, 6], state [T, 6], env_state [T, 10]."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    dataset = LeRobotDataset(repo_id, root=root)
    table = dataset.hf_dataset.with_format("numpy")
    episode_index = np.asarray(table["episode_index"])
    columns = {
        "action": np.stack(table["action"]),
        "state": np.stack(table["observation.state"]),
        "env_state": np.stack(table["observation.environment_state"]),
    }
    return [
        {name: values[episode_index == ep] for name, values in columns.items()}
        for ep in np.unique(episode_index)
    ]
