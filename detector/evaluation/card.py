"""Write ``MODEL_CARD.md`` (Hugging Face format) from what was measured, never from memory.

    python -m detector card --model assets/model --eval runs/eval/metrics.json [--loso runs/loso/loso.json]

Every number in the card is read from ``model.json`` (training settings, calibration, validation
metrics written by ``detector.training.train``) and from the JSON files of ``detector.evaluation.evaluate`` and
``detector.evaluation.loso``; the commands that produced them are written next to the tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..inference.bundle import read_config

INTRO = """\
## Model description

A MobileNetV2 (ImageNet weights from torchvision, converted to Keras by this project) fine-tuned to tell
real face crops from manipulated or generated ones. Input: a square face crop (margin {margin} around the
MTCNN face box) resized to {size}x{size} RGB, 0-255; the ImageNet normalisation is inside the model. Output:
one calibrated probability that the face is fake (temperature {temperature:.3f} folded into the last
layer). Decision threshold {threshold:.3f}, chosen on validation data to maximise balanced accuracy
averaged over sources. Grad-CAM layer: `{cam_layer}`.

Files: `model.keras` (Keras 3), `model.json` (settings, calibration, metrics, SHA-256 of both weight files)
and `model.tflite`, the same network converted to TF Lite for fast CPU inference (it also outputs the
logit's gradient with respect to the Grad-CAM layer); the project's apps use it while its recorded
hashes match, with probabilities equal to the Keras model's to within 1e-5.

## Intended use

- Helping journalists, moderators and curious people *triage* a face photo: a calibrated probability
  and a heatmap of the regions that drove it, as one piece of evidence among others.
- Research and teaching about face-manipulation detection; retraining on your own data
  (`python -m detector train`).

## Out-of-scope use and misuse

- Not proof. Never the sole basis for accusing a person, moderating an account, or in legal,
  employment or journalistic decisions without independent verification.
- Not for images without faces, drawings, paintings, or heavily stylised images.
- Not a detector of every generator: it has not seen most diffusion models, recent face-swap tools or
  commercial apps, and its accuracy on unseen generators is much lower (see below).
- Not for surveillance or identification: it does not recognise who a person is.

## Training data

`{trained_on}` — 13,681 face images from four public sources (the project's developer set;
`manifest.csv` with label, source, split, group). Split train/val by group (never by file):
- **DFDC**: face crops from Deepfake Detection Challenge videos (face swaps); repo Apache-2.0,
  DFDC data terms not stated there.
- **LFWSWAP**: Labeled Faces in the Wild photos and face-swapped LFW photos; licence not stated.
- **YONSEI**: Yonsei "Real and Fake Face Detection" (expert Photoshop composites); licence not stated.
- **CELEBA_STYLEGAN**: CelebA-like real photos vs GAN-generated faces; licence not stated.

Known shortcuts in this data (e.g. CELEBA_STYLEGAN real and fake images differ in size and background)
are removed by cropping the face and resizing every crop to the same square; results are still reported
per source so that no easy source hides a hard one. Because the licences of three sources are not
stated, treat the weights as research artefacts.

## Training procedure

Settings (from `model.json`): {settings}

Command: `python -m detector train --data ../shared/data/faces --prepared .cache/prepared/faces-160 --out {out}`
with the settings above as flags; then `python -m detector evaluate` for the tables below.
"""

ETHICS = """\
## Limitations

- Unseen generators and editing tools: see the leave-one-source-out table — the honest estimate of
  what users meet.
- Re-compression, resizing and blur lower the score's reliability (robustness table).
- The calibration and threshold were fitted on the same validation images the metrics report, so the
  validation ECE is optimistic (the cross-fitted table, where present, is the fairer figure);
  calibration on other data can differ.
- Heatmaps come from a coarse feature grid and show where the evidence lies, not why.
- Faces under about 24 px are not detected; profile and occluded faces may be missed.

## Ethical considerations

A false "fake" can harm a real person's reputation; a false "real" can lend credibility to a forgery.
The app therefore shows probabilities, flags uncertain results near the threshold, and says plainly
when no face was found. Uploads are processed in memory and not kept.

## License

Code: MIT. Weights: derived from torchvision's ImageNet MobileNetV2 (BSD-3-Clause) and fine-tuned on
data whose licences are partly not stated (see Training data); use for research and evaluation.
"""


def _f(v, d: int = 3) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def metrics_table(per: dict) -> str:
    rows = ["| source | n | AUC | AP | accuracy | balanced acc. | EER | ECE | real flagged | fakes caught |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for src, m in per.items():
        rows.append(f"| {src} | {m['n']} | {_f(m['auc'])} | {_f(m['ap'])} | {_f(m['accuracy'])} | "
                    f"{_f(m['balanced_accuracy'])} | {_f(m['eer'])} | {_f(m['ece'])} | "
                    f"{_f(m['false_positive_rate'])} | {_f(m['tpr_fake'])} |")
    return "\n".join(rows)


def robustness_table(rob: dict, sources: list[str]) -> str:
    rows = ["| perturbation | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for name, row in rob.items():
        rows.append(f"| {name} | " + " | ".join(f"{_f(row[s]['auc'])} ({_f(row[s]['drop'], 3)})" for s in sources) + " |")
    return "\n".join(rows)


def loso_table(loso: dict) -> str:
    rows = ["| left-out source | images | AUC on it | balanced acc. on it | val AUC, trained sources |",
            "|---|---|---|---|---|"]
    for src, r in loso["folds"].items():
        rows.append(f"| {src} | {r['n']} | {_f(r['held_out_auc'])} | {_f(r['held_out_balanced_accuracy'])} | "
                    f"{_f(r['val_mean_auc_trained_sources'])} |")
    return "\n".join(rows)


def compare_table(table: dict) -> str:
    """``detector.evaluation.loso --compare`` output (compare.json) as Markdown: one row per training recipe."""
    sources = sorted({s for r in table.values() for s in r["folds"]})
    rows = ["| recipe | " + " | ".join(f"AUC on unseen {s}" for s in sources)
            + " | mean, unseen | mean val AUC, trained sources |", "|---|" + "---|" * (len(sources) + 2)]
    for name, r in table.items():
        cells = [_f(r["folds"].get(s, {}).get("held_out_auc")) for s in sources]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {_f(r['mean_held_out_auc'])} | {_f(r['mean_val_auc'])} |")
    return "\n".join(rows) + "\n"


def render(model_dir: Path, eval_json: Path | None, loso_json: Path | None, loso_note: str = "",
           training_note: str = "", compare_json: Path | None = None, compare_note: str = "") -> str:
    cfg = read_config(model_dir)
    ev = json.loads(eval_json.read_text()) if eval_json else None
    t = cfg.training
    keys = ["architecture", "pretrained", "input_size", "epochs", "steps_per_epoch", "batch_size", "learning_rate",
            "weight_decay", "dropout", "sbi_prob", "augment", "patience", "seed"]
    settings = ", ".join(f"`{k}={t.get(k)}`" for k in keys if k in t)
    if cfg.metrics.get("best_epoch") is not None:
        settings += f"; best epoch {cfg.metrics['best_epoch']} by mean per-source validation AUC"
    if training_note:
        settings += f". {training_note}"
    front = ["---", "license: mit", "library_name: keras", "pipeline_tag: image-classification",
             "tags: [deepfake-detection, face-forensics, grad-cam, keras, mobilenetv2]"]
    if ev:
        overall = ev["metrics"]["overall"]
        front += ["model-index:", f"- name: {cfg.name}", "  results:", "  - task: {type: image-classification}",
                  "    dataset: {name: fdet developer set (4 sources), type: custom, split: val}", "    metrics:",
                  f"    - {{type: roc_auc, value: {overall['auc']:.4f}}}",
                  f"    - {{type: balanced_accuracy, value: {overall['balanced_accuracy']:.4f}}}",
                  f"    - {{type: ece, value: {overall['ece']:.4f}}}"]
    front.append("---")
    out = ["\n".join(front), "", f"# {cfg.name} {cfg.version}", "",
           INTRO.format(margin=cfg.crop_margin, size=cfg.input_size, temperature=cfg.temperature,
                        threshold=cfg.threshold, cam_layer=cfg.cam_layer, trained_on=cfg.trained_on,
                        settings=settings, out=t.get("out", "runs/NAME"))]
    if ev:
        srcs = list(ev["metrics"].keys())
        out += ["## Evaluation", "",
                f"Validation split of the developer set ({ev['n']} images, faces found in {ev['faces_found']}), "
                f"at the stored threshold. Command: `python -m detector evaluate --data ../shared/data/faces "
                f"--prepared .cache/prepared/faces-160 --model assets/model --out runs/eval` (the face crops "
                f"cached by `detector.training.prepare`, made by the app's own cropping code). Plots and the full "
                f"report: `eval/` beside this card.", "", metrics_table(ev["metrics"]), ""]
        if ev.get("robustness"):
            out += ["### Robustness", "", "AUC after degrading the face crop (drop from clean AUC in brackets):", "",
                    robustness_table(ev["robustness"], srcs), ""]
    if loso_json and loso_json.is_file():
        out += ["### Leave-one-source-out (generalisation to unseen sources)", "",
                loso_note or "Each row: a model trained without that source, scored on all of its images.", "",
                loso_table(json.loads(loso_json.read_text())), ""]
    if compare_json and compare_json.is_file():
        out += ["### Training recipes compared (leave-one-source-out)", "",
                compare_note or "Each row: the same leave-one-source-out protocol with one recipe change.", "",
                compare_table(json.loads(compare_json.read_text())), ""]
    if ev and ev.get("cross_fitted"):
        cf = ev["cross_fitted"]
        out += ["### Calibration on unseen groups", "",
                "The stored temperature and threshold were fitted on the validation split above, which flatters "
                "its ECE. Re-fitting them on half of the validation groups and scoring the other half "
                "(2-fold, by group) gives the estimate for people and videos the calibration never saw:", "",
                "| source | n | ECE | balanced acc. | real flagged |", "|---|---|---|---|---|"]
        out += [f"| {s} | {m['n']} | {_f(m['ece'])} | {_f(m['balanced_accuracy'])} | {_f(m['false_positive_rate'])} |"
                for s, m in cf["metrics"].items()] + [""]
    out += [ETHICS]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m detector card", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="assets/model", help="model folder with model.json (default assets/model)")
    ap.add_argument("--eval", type=Path, help="metrics.json written by detector.evaluation.evaluate")
    ap.add_argument("--loso", type=Path, help="loso.json written by detector.evaluation.loso")
    ap.add_argument("--loso-note", default="", help="a sentence on how the leave-one-source-out runs were made")
    ap.add_argument("--training-note", default="", help="a sentence on how the training run went (e.g. stopped early)")
    ap.add_argument("--compare", type=Path, help="compare.json written by detector.evaluation.loso --compare")
    ap.add_argument("--compare-note", default="", help="a sentence on how the compared runs were made")
    ap.add_argument("--out", type=Path, help="where to write (default <model>/MODEL_CARD.md)")
    a = ap.parse_args(argv)
    text = render(Path(a.model), a.eval, a.loso, a.loso_note, a.training_note, a.compare, a.compare_note)
    out = a.out or Path(a.model) / "MODEL_CARD.md"
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
