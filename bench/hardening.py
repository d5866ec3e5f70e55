"""Adversarial hardening compared: each model's clean validation AUC against its attacked AUC.  Prints JSON.

    python -m bench.hardening --out runs/bench/hardening.json \\
        shipped=assets/model:assets/model/eval/attacks.json \\
        fgsm2=runs/adv-fgsm2:runs/bench/attacks-adv-fgsm2.json ...

Each ``NAME=MODEL_DIR:ATTACKS_JSON`` pairs a model folder (its ``model.json`` holds the validation
AUC per source that training measured, on the whole validation split) with the output of
``python -m bench.attacks`` (or ``detector evaluate --attacks``) for that model.  The first entry is
the reference: every other row says what hardening cost in clean AUC against it, per source, and what
it bought under each attack.  Tabulation only -- no model runs here; the model card renders the same
JSON (``python -m detector card --hardening``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import emit, git_commit


def entry(name: str, model_dir: Path, attacks_json: Path) -> dict:
    cfg = json.loads((model_dir / "model.json").read_text())
    val = cfg.get("metrics", {}).get("val", {})
    report = json.loads(attacks_json.read_text())
    table = report.get("attacks", report)
    attacked = {k: r["attack"]["overall"]["auc"] for k, r in table["results"].items()}
    return {"name": name, "model": str(model_dir), "version": cfg.get("version"), "training": {
                k: cfg.get("training", {}).get(k) for k in ("adv_eps", "adv_steps", "adv_share", "init_from", "epochs",
                                                           "steps_per_epoch", "learning_rate", "head_learning_rate")},
            "temperature": cfg.get("temperature"),
            "val_auc": {s: m.get("auc") for s, m in val.items() if s != "overall"},
            "val_mean_source_auc": cfg.get("metrics", {}).get("val_mean_source_auc"),
            "attacked_faces": table.get("rows"), "clean_auc_attacked_faces": table["clean"]["overall"]["auc"],
            "attacked_auc": attacked}


def compare(entries: list[dict]) -> dict:
    ref = entries[0]
    for e in entries:
        e["clean_cost"] = {s: (None if e["val_auc"].get(s) is None else round(ref["val_auc"][s] - e["val_auc"][s], 4))
                           for s in ref["val_auc"]}
        costs = [v for v in e["clean_cost"].values() if v is not None]
        e["worst_clean_cost"] = max(costs) if costs else None
    return {"reference": ref["name"], "runs": entries}


def parse_run(text: str) -> tuple[str, Path, Path]:
    name, sep, rest = text.partition("=")
    model, sep2, attacks = rest.rpartition(":")
    if not (sep and sep2 and name and model and attacks):
        raise argparse.ArgumentTypeError(f"expected NAME=MODEL_DIR:ATTACKS_JSON, got {text!r}")
    return name, Path(model), Path(attacks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hardening", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=parse_run, metavar="NAME=MODEL_DIR:ATTACKS_JSON",
                    help="the reference (unhardened) model first")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args(argv)
    missing = [str(p) for _, m, a in args.runs for p in (m / "model.json", a) if not p.is_file()]
    if missing:
        print(f"error: not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    report = compare([entry(*r) for r in args.runs])
    report["commit"] = git_commit()
    from detector.evaluation.card import hardening_table

    print(hardening_table(report), file=sys.stderr)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
