"""Scores for world models: GameWorld Score's dimensions computed offline, plus fidelity to the simulator.

One module per dimension (image_quality, aesthetic, temporal, smoothness, controllability, consistency3d,
scenario, fidelity, pose), the inverse dynamics model (idm), the shared optical flow (flow), the bad
baselines (baselines), the optional paper scorers (scorers), the suite (suite, videos), the report (report),
the command (cli: `worldmodel eval`) and the cost benchmark (bench). docs/EVAL.md explains them.
"""
