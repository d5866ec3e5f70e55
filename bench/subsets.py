"""Per-content breakdown of one source: the model's AUC for each subset of fakes against each subset of reals.

    python -m bench.subsets --data ../shared/data/faces --prepared .cache/prepared/faces-native256 \\
        --model assets/model --source PIXABAY_SD14

A source can be separable by content instead of by manipulation (PIXABAY_SD14: 400 fakes are "blonde
woman" prompts, the reals are men and women of many ages).  The manifest's ``origin`` column names where
each image came from; its folder is the subset (e.g. ``.../blonde_woman``, ``.../man``, ``.../woman``).
If the model had learned "blonde woman = fake", the blonde subset would score far above the man subset
against the same reals, and the gender-matched pairs (man fakes vs man reals) would collapse.  Scores the
validation split; prints JSON (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from bench.common import emit


def subset_of(origin: str) -> str:
    """The last folder of a manifest ``origin`` path: the content subset an image came from."""
    parts = origin.replace("\\", "/").split("/")
    return parts[-2] if len(parts) >= 2 else "?"


def run(data: str, prepared: str, model: str, source: str, split: str = "val") -> dict:
    from detector.evaluation import metrics
    from detector.evaluation.scoring import Crops, score_natives
    from detector.inference.bundle import load_bundle
    from detector.inference.forward import Classifier, layout_for
    from detector.inference.views import spec_of
    from detector.training.prepare import Prepared

    origin = {}
    with open(Path(data) / "manifest.csv", newline="") as f:
        for r in csv.DictReader(f):
            origin[str((Path(data) / r["path"]).resolve())] = subset_of(r.get("origin", ""))
    d = Prepared(prepared)
    idx = [i for i, r in enumerate(d.rows) if r["source"] == source and r["split"] == split and r["face_found"]]
    y = d.label[idx]
    # fake and real folders may share a name (PIXABAY_SD14: "man" prompts and the Pixabay "man" photos)
    subsets = np.array([("fake/" if lab else "real/") + origin.get(str(Path(d.rows[i]["path"]).resolve()), "?")
                        for i, lab in zip(idx, y)])
    keras_model, cfg = load_bundle(model)
    p = score_natives(Classifier.from_keras(keras_model, layout_for(cfg)), spec_of(cfg), Crops(d, idx))
    out = {"source": source, "split": split, "model": model, "version": cfg.version, "threshold": cfg.threshold,
           "subsets": {}, "pairs": {}}
    for s in sorted(set(subsets.tolist())):
        m = subsets == s
        out["subsets"][s] = {"label": s.split("/", 1)[0], "n": int(m.sum()),
                             "mean_p_fake": round(float(p[m].mean()), 4),
                             "flagged_at_threshold": round(float((p[m] >= cfg.threshold).mean()), 4)}
    fakes = [s for s, v in out["subsets"].items() if v["label"] == "fake"]
    reals = [s for s, v in out["subsets"].items() if v["label"] == "real"]
    for fs in fakes:
        for rs in reals + ["all reals"]:
            m = (subsets == fs) | ((y == 0) if rs == "all reals" else (subsets == rs))
            out["pairs"][f"{fs} vs {rs}"] = {"auc": metrics.auc(y[m], p[m]),
                                            "recall_at_5pct_reals": metrics.recall_at_fpr(y[m], p[m], 0.05)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.subsets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="data folder with manifest.csv (its origin column)")
    ap.add_argument("--prepared", required=True, help="prepared crop folder of that data")
    ap.add_argument("--model", default="assets/model", help="model folder (default assets/model)")
    ap.add_argument("--source", default="PIXABAY_SD14", help="source to break down (default PIXABAY_SD14)")
    ap.add_argument("--split", default="val", help="split to score (default val)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    a = ap.parse_args(argv)
    if not (Path(a.data) / "manifest.csv").is_file():
        print(f"{a.data} has no manifest.csv", file=sys.stderr)
        return 2
    emit(run(a.data, a.prepared, a.model, a.source, a.split), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
