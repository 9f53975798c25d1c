"""The `worldmodel` command.

Each subcommand lives in the module that implements it; that module exposes

    add_arguments(parser: argparse.ArgumentParser) -> None
    main(args: argparse.Namespace) -> int | None

and is imported only when its subcommand runs, so `worldmodel --help` stays fast
(torch alone takes seconds to import).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# name -> (module, one-line help). Keep the list in the order a user meets the commands.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("app.demo", "run the main job on the shipped default and show the result"),
    "record": ("data.record", "record labelled gameplay clips from the voxel world"),
    "snapshot": ("data.snapshot", "render still pictures of the world (biomes, poses) to PNG"),
    "train": ("worldmodel.train", "train the autoencoder or the world model from a config file"),
    "soup": ("worldmodel.soup", "average a fine-tuned DiT with the one it started from (weight soup)"),
    "quantize": ("app.quantize", "quantize a checkpoint (int8, LUT-GEMM, bitsandbytes)"),
    "generate": ("app.generate", "generate videos in batch from a job file"),
    "play": ("app.play", "play the generated world live in a pygame window"),
    "web": ("app.web", "serve the Gradio page on 127.0.0.1"),
    "eval": ("eval.cli", "score a model or a folder of videos (GameWorld Score + fidelity)"),
    "bench": ("app.bench", "run a benchmark and print a table (world, quant, stream, eval, memory, web)"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="worldmodel",
        description="An interactive, action-conditioned world model for a Minecraft-like voxel game.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `worldmodel COMMAND --help` for the options of one command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Nothing in this project talks to the network at run time.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not argv or argv[0] not in COMMANDS:
        parser = _parser()
        if not argv or argv[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        parser.parse_args(argv)  # prints "invalid choice" and exits 2
        return 2
    name = argv[0]
    module_name, help_text = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(
        prog=f"worldmodel {name}",
        description=(module.__doc__ or help_text).strip().split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        code = module.main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if os.environ.get("WORLDMODEL_DEBUG") == "1":
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
    return int(code or 0)


# What a person can get wrong (a path, a file's content, a setting) reaches here as one of these. The commands
# catch what they expect themselves; this is the net under them, so a bad input never ends in a traceback.
# WORLDMODEL_DEBUG=1 lets them through with their traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


if __name__ == "__main__":
    sys.exit(main())
