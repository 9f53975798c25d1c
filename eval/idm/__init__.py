"""The inverse dynamics model (IDM): which keys and mouse moves turned each frame into the next.

    model.py   the network, reading a video, saving and loading (save_pretrained / from_pretrained)
    data.py    its clips: simulated players in fresh worlds, recordings, the benchmark's own videos
    train.py   training on clips simulated while it trains, and its accuracy on held-out clips
    card.py    the MODEL_CARD.md of a trained IDM
    cli.py     `python -m eval.idm train|test`

Dependency order inside eval/: labels -> idm.model -> scorers -> suite -> idm.data, idm.train, idm.cli.
This file imports nothing, so importing idm.model never pulls in the training side.
"""
