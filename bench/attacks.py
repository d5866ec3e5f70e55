"""White-box attack table of a model: how far an invisible change moves its scores.  Prints JSON.

    python -m bench.attacks --data ../shared/data/faces --prepared .cache/prepared/faces-native256 \
        --per-class 10 --transfer-from runs/lofo/combined/without-diffusion --out runs/bench/attacks.json

FGSM and PGD-10 (step eps/4, random start) at each L-inf budget (0..255 units), "both classes attacked"
and "only fakes attacked", through the exact decision path the app runs (native crop -> views ->
network; gradients from the Keras twin of the served TF Lite model), every attacked crop re-quantised
to uint8; also the same crops after JPEG 90 and, with ``--transfer-from``, PGD crafted on another
model.  This is ``python -m detector evaluate --attacks`` (``detector.evaluation.attacks``) without the
rest of the evaluation; the model card and the README's table come from its output.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .common import emit, git_commit, machine_load


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.attacks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset (as for detector evaluate)")
    p.add_argument("--prepared", default="", help="crop cache from detector prepare (as for detector evaluate)")
    p.add_argument("--model", default="assets/model", help="model folder (default assets/model)")
    p.add_argument("--split", default="val", help="rows of this split (default val)")
    p.add_argument("--eps", default="1,2,4,8", help="L-inf budgets in 0..255 units (default 1,2,4,8)")
    p.add_argument("--per-class", type=int, default=10, help="faces per class and source attacked (default 10)")
    p.add_argument("--transfer-from", default="", help="another model folder to craft transfer attacks on")
    p.add_argument("--out", help="also write the JSON here")
    return p


def run(args) -> dict:
    from detector.evaluation.evaluate import evaluate

    t0 = time.time()
    load = machine_load()
    with tempfile.TemporaryDirectory() as tmp:
        result = evaluate(args.data, args.model, tmp, args.split, [], 0, "auto", args.prepared, True,
                          {"eps": [float(e) for e in args.eps.split(",")], "per_class": args.per_class,
                           "transfer_from": args.transfer_from})
    return {"model": result["model"], "data": str(args.data), "split": args.split, "commit": git_commit(),
            "machine_before": load, "seconds": round(time.time() - t0, 1), "attacks": result["attacks"]}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.data).exists():
        print(f"error: {args.data} does not exist", file=sys.stderr)
        return 1
    report = run(args)
    from detector.evaluation.attacks import markdown

    print(markdown(report["attacks"]), file=sys.stderr)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
