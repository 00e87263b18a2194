"""ACTSmooth: ACT conditioned on an action prefix, as a LeRobot policy plugin."""
