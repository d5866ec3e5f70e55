"""Leave-one-family-out (or one source out): the honest generalisation figure.

    python -m detector loso --data ../shared/data/faces --out runs/lofo --families all --epochs 1 --steps-per-epoch 150

``--families`` holds out one *family* of manipulation per fold (``detector.training.train.FAMILIES``: face
swap = DFDC + LFWSWAP, composite = YONSEI, GAN = CELEBA_STYLEGAN + FFHQ_TPDNE, diffusion = SDFD
with its matched reals): the model never saw that kind of fake, nor any source of it.
``--sources`` holds out one source per fold instead (the model-1.x protocol).

For each source in turn, train on the others only (early stopping sees only their validation
rows) and score *every* image of the left-out source, train and val alike -- it played no part in
training.  Writes ``loso.json`` and ``loso.md``.  Any other ``detector train`` flag can be passed
after ``--`` (e.g. ``-- --sbi-prob 0``), so the table can compare training recipes; then

    python -m detector loso --compare default=runs/compare/default no-sbi=runs/compare/no-sbi --out runs/compare

puts the runs side by side (``compare.json``, ``compare.md``): AUC on each left-out source, their
mean, and the validation AUC on the sources each fold was trained on.  ``name=folder1,folder2`` (runs of
one recipe with other ``--seed`` values) averages them fold by fold and shows each run's AUC beside.

The pick is made by a stated rule, not by eye: the recipe with the best mean held-out AUC leads, and each
other recipe is set against it on *paired* differences -- the same fold trained with the same ``--seed``
(same data order and initial head), so fold difficulty and seed cancel.  The lead counts as shown when the
mean difference is at least twice its standard error over those pairs (about a 95 % one-sided t-test for a
handful of pairs); otherwise the two recipes are tied by this measurement (``vs_leader`` in compare.json,
a second table in compare.md).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..training.prepare import default_prepared_dir, load_prepared
from ..training.train import FAMILIES, FOLDS, TrainConfig, parse_args, train
from .card import compare_table

SHOWN_AT_SE = 2.0  # a lead is "shown" when the mean paired difference is at least this many standard errors


def _read_run(path: str) -> dict:
    """One finished run: a folder with loso.json, or such a JSON file itself."""
    p = Path(path)
    return json.loads((p / "loso.json" if p.is_dir() else p).read_text())


def _merge_runs(runs: list[dict]) -> dict[str, dict]:
    """Per fold, the mean of each figure over the runs (seeds) that have it, with the single runs' AUCs."""
    folds: dict[str, dict] = {}
    for name in dict.fromkeys(k for r in runs for k in r["folds"]):
        have = [r["folds"][name] for r in runs if name in r["folds"]]
        merged = {}
        for key in ("held_out_auc", "held_out_ap", "held_out_balanced_accuracy", "held_out_real_flagged",
                    "held_out_fakes_caught", "recall_at_5pct_reals", "val_mean_auc_trained_sources"):
            vals = [f[key] for f in have if f.get(key) is not None]
            if vals:
                merged[key] = sum(vals) / len(vals)
        merged["n"] = have[0].get("n")
        merged["runs"] = len(have)
        merged["held_out_auc_runs"] = [f.get("held_out_auc") for f in have]
        merged["recall_at_5pct_reals_runs"] = [f.get("recall_at_5pct_reals") for f in have]
        folds[name] = merged
    return folds


def run_seed(settings: list[str]) -> int:
    """The ``--seed`` a run was trained with (its recorded train flags), else the training default."""
    for i, flag in enumerate(settings[:-1]):
        if flag == "--seed":
            return int(settings[i + 1])
    return TrainConfig.seed


def paired_differences(leader: dict, other: dict, folds: list[str]) -> dict:
    """``leader`` minus ``other`` held-out AUC over pairs of runs with the same fold and the same seed."""
    diffs = [lead[f] - oth[f] for seed, lead in leader.items() if seed in other
             for oth in [other[seed]] for f in folds
             if lead.get(f) is not None and oth.get(f) is not None]
    n = len(diffs)
    mean = sum(diffs) / n if n else None
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n) if n > 1 else None
    return {"pairs": n, "mean_difference": mean, "standard_error": se,
            "leader_better": sum(d > 0 for d in diffs),
            "shown": bool(se is not None and mean > 0 and mean >= SHOWN_AT_SE * se)}


def compare(runs: list[str], out: Path) -> str:
    """Side-by-side table of LOSO runs given as ``name=folder`` (each with its loso.json); ``name=a,b,c``
    averages several runs of one recipe (other seeds) fold by fold, so seed noise can be told from a gap."""
    table, by_seed = {}, {}
    for spec in runs:
        name, sep, folders = spec.partition("=")
        if not sep or not folders:
            raise SystemExit(f"--compare takes name=folder[,folder...], got {spec!r}")
        data = [_read_run(f) for f in folders.split(",")]
        aucs = [{k: f.get("held_out_auc") for k, f in d["folds"].items()} for d in data]  # each run's, per fold
        table[name] = {"settings": data[0]["settings"], "folds": _merge_runs(data) if len(data) > 1 else data[0]["folds"]}
        by_seed[name] = {run_seed(d["settings"]): a for d, a in zip(data, aucs)}
        if len(data) > 1:
            table[name]["runs"] = [{"settings": d["settings"], "folds": a} for d, a in zip(data, aucs)]
    # Recipes whose runs cover different folds are compared on the folds every one of them has.
    shared = set.intersection(*(set(r["folds"]) for r in table.values())) if table else set()
    for r in table.values():
        held = [f["held_out_auc"] for f in r["folds"].values() if f.get("held_out_auc") is not None]
        val = [f["val_mean_auc_trained_sources"] for f in r["folds"].values()]
        both = [r["folds"][k]["held_out_auc"] for k in sorted(shared) if r["folds"][k].get("held_out_auc") is not None]
        r["mean_held_out_auc"] = sum(held) / len(held) if held else None
        r["mean_val_auc"] = sum(val) / len(val) if val else None
        r["shared_folds"] = sorted(shared)
        r["mean_held_out_auc_shared_folds"] = sum(both) / len(both) if both else None
    ranked = sorted(table, key=lambda n: -(table[n]["mean_held_out_auc_shared_folds"] or 0.0))
    for name in ranked[1:]:
        table[name]["vs_leader"] = {"leader": ranked[0], **paired_differences(by_seed[ranked[0]], by_seed[name],
                                                                             sorted(shared))}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(table, indent=2))
    md = compare_table(table)
    (out / "compare.md").write_text(md)
    return md


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector loso", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", nargs="+", metavar="NAME=FOLDER",
                    help="instead of training: tabulate finished runs side by side into --out "
                         "(FOLDER: a run folder or its loso.json; several, comma-separated: seeds, averaged)")
    ap.add_argument("--data", help="dataset (as for detector.train)")
    ap.add_argument("--out", required=True, help="folder for one model per fold plus loso.json/loso.md")
    ap.add_argument("--prepared", default="", help="crop cache folder (as for detector.train)")
    ap.add_argument("--sources", default="", help="comma-separated sources to leave out, one per fold")
    ap.add_argument("--families", default="", help=f"comma-separated families to leave out, one per fold, or 'all' "
                    f"(the families {', '.join(FAMILIES)}); 'generators' holds out GAN and diffusion together")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per fold (default 3)")
    ap.add_argument("--steps-per-epoch", type=int, default=150, help="batches per epoch (default 150)")
    ap.add_argument("train_args", nargs="*", help="extra detector.train flags, after --")
    a = ap.parse_args(argv)
    if a.compare:
        print(compare(a.compare, Path(a.out)), end="")
        return
    if not a.data:
        ap.error("--data is required (unless --compare)")
    base = ["--data", a.data, "--epochs", str(a.epochs), "--steps-per-epoch", str(a.steps_per_epoch)]
    if a.prepared:
        base += ["--prepared", a.prepared]
    cfg0 = parse_args(base + a.train_args)
    prepared = cfg0.prepared or default_prepared_dir(a.data)
    if a.families:
        names = list(FAMILIES) if a.families == "all" else a.families.split(",")
        unknown = [f for f in names if f not in FOLDS]
        if unknown:
            ap.error(f"unknown families {unknown}; choose from {', '.join(FOLDS)}")
        folds = {f: ["--exclude-family", f] for f in names}
    else:
        sources = a.sources.split(",") if a.sources else sorted(set(load_prepared(prepared).source.tolist()))
        folds = {s: ["--exclude-source", s] for s in sources}
    out = Path(a.out)
    table = json.loads((out / "loso.json").read_text())["folds"] if (out / "loso.json").is_file() else {}
    for name, flags in folds.items():
        fold = out / f"without-{name}"
        if name in table:  # finished in an earlier, interrupted run of the same command
            continue
        cfg = parse_args(base + a.train_args + ["--out", str(fold), *flags])
        train(cfg)
        res = json.loads((fold / "train_result.json").read_text())
        held = res["held_out_family"][name] if a.families else res["held_out"][name]
        table[name] = {"held_out_auc": held["auc"], "held_out_ap": held["ap"], "n": held["n"],
                       "held_out_balanced_accuracy": held["balanced_accuracy"],
                       "held_out_real_flagged": held["false_positive_rate"], "held_out_fakes_caught": held["tpr_fake"],
                       "recall_at_5pct_reals": held.get("recall_at_5pct_reals"),
                       "held_out_sources": {s: m["auc"] for s, m in res["held_out"].items() if s != "overall"},
                       "held_out_sources_recall_at_5pct_reals": {s: m.get("recall_at_5pct_reals")
                                                                 for s, m in res["held_out"].items() if s != "overall"},
                       "val_mean_auc_trained_sources": res["val_mean_source_auc"], "best_epoch": res["best_epoch"]}
        (out / "loso.json").write_text(json.dumps({"settings": base + a.train_args, "unit": "family" if a.families
                                                   else "source", "folds": table}, indent=2))
    lines = ["| left out | images | AUC on it | caught at <= 5 % reals flagged | balanced acc. | val AUC (trained sources) |",
             "|---|---|---|---|---|---|"]
    for src, r in table.items():
        rec = r.get("recall_at_5pct_reals")
        lines.append(f"| {src} | {r['n']} | {r['held_out_auc']:.3f} | {'-' if rec is None else f'{rec:.1%}'} | "
                     f"{r['held_out_balanced_accuracy']:.3f} | {r['val_mean_auc_trained_sources']:.3f} |")
    (out / "loso.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
