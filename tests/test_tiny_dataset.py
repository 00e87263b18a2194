def test_tiny_dataset_loads_with_action_window(tiny_dataset_root):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    fps = 30
    ds = LeRobotDataset("test/tiny_state", root=tiny_dataset_root,
                        delta_timestamps={"action": [i / fps for i in range(-4, 32)]})
    assert ds.num_episodes == 3 and ds.fps == fps
    item = ds[10]
    assert item["action"].shape == (36, 6)
    assert item["observation.environment_state"].shape == (4,)
