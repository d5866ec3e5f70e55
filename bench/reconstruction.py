"""How close each autoencoder's reconstructions are, and whether a model sees their trace.

    python -m bench.reconstruction --prepared .cache/prepared/faces-native256 --model assets/model --per-source 40

For every autoencoder (``taef2``, ``own``): the PSNR of validation reals against their reconstruction
(median and spread, per source), and -- with ``--model`` -- the model's AUC and share caught at <= 5 %
reals flagged on *validation reals vs their own reconstructions*: an aligned test of the decoder trace
alone, on faces no model was trained on.  These reconstructions are made here, in memory, and never
written to the training cache (training uses training reals only).  Prints JSON (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import emit


def run(prepared: str, model: str, autoencoders: list[str], per_source: int) -> dict:
    from detector.evaluation import metrics
    from detector.evaluation.scoring import score_natives
    from detector.training.prepare import Prepared
    from detector.training.reconstructions import load_autoencoder, reals_per_source
    from detector.training.tae import psnr, reconstruct_batch

    data = Prepared(prepared)
    rows = reals_per_source(data, "val", per_source)
    reals = [data.crop(int(i)) for i in rows]
    sources = data.source[rows]
    classifier = spec = None
    if model:
        from detector.inference.bundle import load_bundle
        from detector.inference.forward import Classifier, layout_for
        from detector.inference.views import spec_of

        keras_model, cfg = load_bundle(model)
        classifier, spec = Classifier.from_keras(keras_model, layout_for(cfg)), spec_of(cfg)
    out = {"prepared": prepared, "model": model or None, "validation_reals": int(len(rows)), "autoencoders": {}}
    p_real = None
    if classifier is not None:
        p_real = score_natives(classifier, spec, reals, desc="reals")
    for name in autoencoders:
        t0 = time.time()
        ae = load_autoencoder(name)
        recon = [reconstruct_batch(ae, r[None])[0] for r in reals]
        q = np.array([psnr(a, b) for a, b in zip(reals, recon)])
        entry = {"key": ae.key, "seconds": round(time.time() - t0, 1), "psnr_median": round(float(np.median(q)), 2),
                 "psnr_p10": round(float(np.percentile(q, 10)), 2), "psnr_p90": round(float(np.percentile(q, 90)), 2),
                 "psnr_by_source": {s: round(float(np.median(q[sources == s])), 2) for s in sorted(set(sources))}}
        if p_real is not None:
            p_rec = score_natives(classifier, spec, recon, desc=name)
            y = np.r_[np.zeros(len(p_real)), np.ones(len(p_rec))]
            p = np.r_[p_real, p_rec]
            entry["aligned_auc"] = metrics.auc(y, p)
            entry["aligned_recall_at_5pct_reals"] = metrics.recall_at_fpr(y, p, 0.05)
            entry["mean_p_fake_real"], entry["mean_p_fake_reconstruction"] = float(p_real.mean()), float(p_rec.mean())
        out["autoencoders"][name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.reconstruction", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prepared", required=True, help="prepared crop folder (python -m detector prepare)")
    ap.add_argument("--model", default="", help="model folder: also score reals vs their reconstructions")
    ap.add_argument("--autoencoders", default="taef2,own", help="comma-separated: taef2, own")
    ap.add_argument("--per-source", type=int, default=40, help="validation reals per source (default 40)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    a = ap.parse_args(argv)
    if not (Path(a.prepared) / "index.csv").is_file():
        print(f"{a.prepared} is not a prepared crop folder (python -m detector prepare)", file=sys.stderr)
        return 2
    emit(run(a.prepared, a.model, a.autoencoders.split(","), a.per_source), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
