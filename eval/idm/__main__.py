"""`python -m eval.idm train|test` (eval/idm/cli.py)."""

import argparse
import sys

from eval.idm.cli import add_arguments, main

parser = argparse.ArgumentParser(
    prog="python -m eval.idm",
    description="The inverse dynamics model (IDM): which keys and mouse moves turned each frame into the next.",
)
add_arguments(parser)
sys.exit(main(parser.parse_args()))
