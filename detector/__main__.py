"""``python -m detector <command> ...``: one entry point for the user tasks.

Each command lives in its own module with its own ``main(argv)`` and ``--help``; this file only
dispatches, so a command that is not installed (or not written yet) simply is not listed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .config import quiet_environment

quiet_environment()  # before any command imports TensorFlow

# command -> (module, one-line description), in the order of the user's tasks
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("detector.batch.scan", "score images and videos in files/folders; JSON lines, CSV or an HTML report"),
    "prepare": ("detector.training.prepare", "find and crop the faces of a labelled dataset once, for training"),
    "reconstruct": ("detector.training.reconstructions", "cache autoencoder reconstructions of training reals (aligned fakes)"),
    "train-ae": ("detector.training.own_ae", "train the latent-diffusion-shaped autoencoder used for aligned fakes"),
    "train": ("detector.training.train", "train, calibrate and save a model on a labelled dataset"),
    "export-lite": ("detector.training.export", "write model.tflite (fast CPU inference) for a model folder"),
    "evaluate": ("detector.evaluation.evaluate", "measure a model on a labelled dataset (AUC, calibration, per source)"),
    "loso": ("detector.evaluation.loso", "leave-one-source-out: train without each source, score it (or --compare runs)"),
    "card": ("detector.evaluation.card", "write MODEL_CARD.md from the measured JSON files"),
}


def available() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


def build_parser(commands: dict[str, tuple[str, str]]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<12} {desc}" for name, (_, desc) in commands.items())
    p = argparse.ArgumentParser(
        prog="python -m detector", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Deepfake face detector: command-line tasks.",
        epilog=f"commands:\n{listing}\n\n'python -m detector COMMAND --help' explains each command's options.")
    p.add_argument("command", choices=list(commands), metavar="COMMAND", help="one of: " + ", ".join(commands))
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of the command")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = available()
    a = build_parser(commands).parse_args(argv)
    module = importlib.import_module(commands[a.command][0])
    status = module.main(a.args)
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
