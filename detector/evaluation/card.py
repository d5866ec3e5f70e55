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

Two branches in one Functional Keras model with one sigmoid output ("dual"):

- **semantic**: MobileNetV2 (ImageNet weights from torchvision, converted to Keras by this project)
  on the face crop resized to {size}x{size} -- the face as a whole (shape, lighting, blending seams);
- **artefact**: a small CNN trained from scratch (a ResNet stem and two residual stages) on the
  NPR residual (x minus its nearest-neighbour 2x down-and-up copy, Tan et al. CVPR 2024) of
  {n_patches} native-resolution patches of {patch} px cut from the face crop *before any resizing*
  (crops over {native_max} px are first reduced to {native_max} px, the scale of the training images):
  generator up-sampling traces that any resize wipes out.

Input: the square face crop (margin {margin} around the MTCNN face box), given to the model as its two
views (`image` and `patches`, cut by `detector.inference.views`). Output: one calibrated probability
that the face is fake (temperature {temperature:.3f} folded into the last layer). Decision threshold
{threshold:.3f} (how it was chosen: below). Heatmaps: each branch's class-activation map (semantic:
`{cam_layer}`; artefact: `{artefact_layer}`, per patch), fused by the branch's share of the logit.

Files: `model.keras` (Keras 3, loads with `safe_mode`, no `Lambda`), `model.json` (settings,
calibration, metrics, SHA-256 of both weight files) and `model.tflite`, the same network converted to
TF Lite for fast CPU inference (with the features and logit gradients of both map layers as extra
outputs); the project's apps use it while its recorded hashes match, with probabilities equal to the
Keras model's to within 1e-5.

## Intended use

- Helping journalists, moderators and curious people *triage* a face photo: a calibrated probability
  and a heatmap of the regions that drove it, as one piece of evidence among others.
- Research and teaching about face-manipulation detection; retraining on your own data
  (`python -m detector train`).

## Out-of-scope use and misuse

- Not proof. Never the sole basis for accusing a person, moderating an account, or in legal,
  employment or journalistic decisions without independent verification.
- Not for images without faces, drawings, paintings, or heavily stylised images.
- Not a detector of every generator: on kinds of manipulation it was not trained on, its accuracy is
  far lower (the leave-one-family-out table below is the honest figure).
- Not robust to a determined attacker with the weights (white-box table below).
- Not for surveillance or identification: it does not recognise who a person is.

## Training data

`{trained_on}` -- the project's developer set, seven public sources (`manifest.csv` with label, source,
split, group), split train/val by group (never by file):
- **DFDC**: face crops from Deepfake Detection Challenge videos (face swaps); repo Apache-2.0,
  DFDC data terms not stated there.
- **LFWSWAP**: Labeled Faces in the Wild photos and face-swapped LFW photos; licence not stated.
- **YONSEI**: Yonsei "Real and Fake Face Detection" (expert Photoshop composites); licence not stated.
- **CELEBA_STYLEGAN**: CelebA-like real photos vs GAN-generated faces; licence not stated.
- **FFHQ_TPDNE**: FFHQ thumbnails vs thispersondoesnotexist (StyleGAN2) faces, 128 px, compression
  history equalised by the dataset's builders; FFHQ is CC BY-NC-SA 4.0.
- **SDFD**: Stable Diffusion 2.1 portraits (fakes only); each is paired with the real face of another
  source most like it in size, file size, JPEG quality, brightness and sharpness, and stored at that
  partner's size (`detector.training.pairing`; the best-matched 70 % are kept).
- **PIXABAY_SD14**: Stable Diffusion 1.4 portraits (512 px PNG originals, given one JPEG pass and resized
  to the reals' sizes) vs Pixabay stock portraits (Pixabay License); licence of the fakes not stated.
  Many fakes are paintings or young blonde women while the reals are photographs: a content shortcut
  the trivial-feature probe cannot see.

Rows where no face was found are left out of training and validation (the face finder fails more
often on some fakes, which would make "no face" a fake signal). The shortcut probe below reports, per
source, how far trivial image properties alone separate the classes. Because the licences of several
sources are not stated (and FFHQ is non-commercial), treat the weights as research artefacts.

## Training procedure

Settings (from `model.json`): {settings}

Self-Blended Images as the paper trains them (Shiohara & Yamasaki, CVPR 2022): each batch is half real
faces, a quarter dataset fakes and a quarter SBIs made from the first reals of the same batch, from
every source; half the SBIs blend one face part (an eye, the nose, the mouth, the lower face) from
MTCNN's five landmarks. Two AdamW optimisers (pretrained backbone / layers trained from scratch),
cosine decay, JPEG/rescale/shrink/blur/noise/colour augmentations applied to the native crop.

Command: `python -m detector train --data ../shared/data/faces --prepared .cache/prepared/faces-native256
--out {out}` with the settings above as flags; then `python -m detector evaluate` for the tables below.
"""

RECON = """\
**Aligned reconstruction fakes** (`recon`: {names}; after Rajan et al., ICLR 2025, and Zhang et al.'s
AutoGAN, 2019): training reals passed through a latent-diffusion-style autoencoder come back with its
decoder's trace on the same content. `taef2` is the tiny FLUX.2 autoencoder (madebyollin/taesd, MIT),
`own` an f = 8, 4-channel autoencoder this project trained on its training reals (`assets/autoencoder/`).
They fill {share:.0f} % of each batch's fake slots (taking SBI slots first), each paired with its real
crop in the same batch, at native resolution; made once by `python -m detector reconstruct`, never
from validation rows."""

ETHICS = """\
## Limitations

- Kinds of manipulation it was not trained on: see the leave-one-family-out table -- the honest
  estimate of what users meet, and far below the validation figures.
- Re-compression, resizing and blur lower the score's reliability (robustness table).
- An attacker with the weights can make a fake pass with an invisible change (white-box table);
  physical edits, re-generation and patch attacks were not measured.
- The calibration and threshold were fitted on the same validation images the metrics report, so the
  validation ECE is optimistic (the cross-fitted table is the fairer figure); calibration on other
  data can differ.
- Heatmaps show where the evidence lies, coarsely (a 5x5 semantic grid and 8x8 cells per native
  patch over the centre of the crop), not why.
- Faces under about 24 px are not detected; profile and occluded faces may be missed.

## Ethical considerations

A false "fake" can harm a real person's reputation; a false "real" can lend credibility to a forgery.
The app therefore shows probabilities, flags uncertain results near the threshold, and says plainly
when no face was found. Uploads are processed in memory and not kept.

## License

Two licences, stated apart. **Code: MIT.** **These weights: research and evaluation use only** --
derived from torchvision's ImageNet MobileNetV2 (BSD-3-Clause) and trained on data whose licences are
partly not stated or non-commercial (FFHQ: CC BY-NC-SA 4.0; see Training data). The MIT licence of the
code does not extend to them; retrain on data you may use for other purposes.
"""


def _f(v, d: int = 3) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def metrics_table(per: dict) -> str:
    """Per source: AUC beside the share of fakes caught at <= 5 % of that source's reals flagged (what a user
    feels), then the figures at the shipped threshold."""
    rows = ["| source | n | AUC | caught at <= 5 % reals flagged | AP | accuracy | balanced acc. | EER | ECE | "
            "real flagged | fakes caught |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for src, m in per.items():
        rows.append(f"| {src} | {m['n']} | {_f(m['auc'])} | {_f(m.get('recall_at_5pct_reals'))} | {_f(m['ap'])} | "
                    f"{_f(m['accuracy'])} | {_f(m['balanced_accuracy'])} | {_f(m['eer'])} | {_f(m['ece'])} | "
                    f"{_f(m['false_positive_rate'])} | {_f(m['tpr_fake'])} |")
    return "\n".join(rows)


def robustness_table(rob: dict, sources: list[str]) -> str:
    rows = ["| perturbation | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
    for name, row in rob.items():
        rows.append(f"| {name} | " + " | ".join(f"{_f(row[s]['auc'])} ({_f(row[s]['drop'], 3)})" for s in sources) + " |")
    return "\n".join(rows)


def loso_table(loso: dict) -> str:
    unit = loso.get("unit", "source")
    rows = [f"| left-out {unit} | images | AUC on it | caught at <= 5 % reals flagged | per source | "
            "real flagged | fakes caught | val AUC, trained sources |", "|---|---|---|---|---|---|---|---|"]
    for src, r in loso["folds"].items():
        per = ", ".join(f"{s} {_f(a)}" for s, a in (r.get("held_out_sources") or {}).items()) or "-"
        rows.append(f"| {src} | {r['n']} | {_f(r['held_out_auc'])} | {_f(r.get('recall_at_5pct_reals'))} | {per} | "
                    f"{_f(r.get('held_out_real_flagged'))} | {_f(r.get('held_out_fakes_caught'))} | "
                    f"{_f(r['val_mean_auc_trained_sources'])} |")
    return "\n".join(rows)


def compare_table(table: dict) -> str:
    """``detector.evaluation.loso --compare`` output (compare.json) as Markdown: one row per training recipe;
    a fold run with several seeds shows their mean, then each run's AUC in brackets."""
    sources = sorted({s for r in table.values() for s in r["folds"]})
    shared = next(iter(table.values()), {}).get("shared_folds", sources)
    uneven = set(shared) != set(sources)  # some recipe lacks a fold: only the shared folds' mean compares them
    extra = [f"mean, unseen, on {' + '.join(shared) or 'no shared fold'}"] if uneven else []
    rows = ["| recipe | " + " | ".join([f"AUC on unseen {s}" for s in sources] + ["mean, unseen"] + extra)
            + " | mean val AUC, trained sources |", "|---|" + "---|" * (len(sources) + 2 + len(extra))]

    def cell(fold: dict) -> str:
        runs = [v for v in fold.get("held_out_auc_runs") or [] if v is not None]
        spread = f" ({', '.join(_f(v) for v in runs)})" if len(runs) > 1 else ""
        recall = fold.get("recall_at_5pct_reals")
        return _f(fold.get("held_out_auc")) + spread + (f"; caught {recall:.0%}" if recall is not None else "")

    for name, r in table.items():
        cells = [cell(r["folds"].get(s, {})) for s in sources] + [_f(r["mean_held_out_auc"])]
        cells += [_f(r.get("mean_held_out_auc_shared_folds"))] if uneven else []
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {_f(r['mean_val_auc'])} |")
    paired = {name: r["vs_leader"] for name, r in table.items() if r.get("vs_leader")}
    if paired:
        leader = next(iter(paired.values()))["leader"]
        rows += ["", f"Paired against the leader, *{leader}* (same fold, same seed; the lead is shown when the mean "
                 "difference is at least twice its standard error):", "",
                 "| recipe | pairs | leader minus recipe, mean | standard error | leader better in | lead shown |",
                 "|---|---|---|---|---|---|"]
        for name, v in paired.items():
            rows.append(f"| {name} | {v['pairs']} | {_f(v['mean_difference'])} | {_f(v['standard_error'])} | "
                        f"{v['leader_better']} of {v['pairs']} | {'yes' if v['shown'] else 'no: tied'} |")
    return "\n".join(rows) + "\n"


HARDENING_ATTACKS = ("fgsm/fakes/eps2", "pgd10/fakes/eps2", "pgd10/both/eps2")  # the attack columns shown


def hardening_table(report: dict) -> str:
    """``python -m bench.hardening`` output as Markdown: clean validation AUC per source and attacked AUC."""
    runs = report["runs"]
    sources = list(runs[0]["val_auc"])
    attacks = [k for k in HARDENING_ATTACKS if all(k in r["attacked_auc"] for r in runs)]
    rows = ["| model | adv. training | " + " | ".join(f"val AUC {s}" for s in sources)
            + " | mean | worst clean cost | " + " | ".join(attacks) + " |",
            "|---|---|" + "---|" * (len(sources) + 2 + len(attacks))]
    for r in runs:
        t = r["training"]
        steps = t.get("adv_steps") or 1
        kind = "FGSM-RS" if steps == 1 else f"PGD-{steps}"
        how = f"{kind} eps {t['adv_eps']:g}, share {t.get('adv_share') or 0:g}" if t.get("adv_eps") else "none"
        cost = "reference" if r["name"] == report["reference"] else _f(r.get("worst_clean_cost"))
        rows.append(f"| {r['name']} | {how} | " + " | ".join(_f(r["val_auc"].get(s)) for s in sources)
                    + f" | {_f(r.get('val_mean_source_auc'))} | {cost} | "
                    + " | ".join(_f(r["attacked_auc"][k]) for k in attacks) + " |")
    return "\n".join(rows) + "\n"


THREAT_MODEL = ("Threat model: white box (the attacker has the weights), L-inf perturbations of the face crop's "
                "pixels in 0-255 units (eps 1 = 1/255), through the exact path the app runs (native crop -> "
                "resize and patch cutting -> network; gradients from the Keras twin of the served TF Lite model), "
                "re-quantised to whole pixel levels; AUC and, in brackets, fakes caught at the threshold. 'fakes' = "
                "only the fakes attacked (a forger's evasion); 'both' = reals pushed towards fake too. Not covered: "
                "physical edits, re-generation, patch attacks, attacks on the face finder.")


def render(model_dir: Path, eval_json: Path | None, loso_json: Path | None, loso_note: str = "",
           training_note: str = "", compare_json: Path | None = None, compare_note: str = "",
           attacks_json: Path | None = None, attacks_note: str = "", hardening_json: Path | None = None,
           hardening_note: str = "") -> str:
    cfg = read_config(model_dir)
    ev = json.loads(eval_json.read_text()) if eval_json else None
    t = cfg.training
    keys = ["architecture", "pretrained", "input_size", "patch", "n_patches", "epochs", "steps_per_epoch", "batch_size",
            "learning_rate", "head_learning_rate", "weight_decay", "dropout", "sbi", "sbi_prob", "part_prob", "augment",
            "adv_eps", "adv_steps", "adv_share", "recon", "recon_share", "patience", "seed", "init_from"]
    settings = ", ".join(f"`{k}={t.get(k)}`" for k in keys if k in t)
    if cfg.metrics.get("best_epoch") is not None:
        settings += f"; best epoch {cfg.metrics['best_epoch']} by mean per-source validation AUC"
    if training_note:
        settings += f". {training_note}"
    # The code is MIT; these weights were trained on data that is partly non-commercial or of unstated licence.
    front = ["---", "license: other", "license_name: research-use-weights", "library_name: keras", "pipeline_tag: image-classification",
             "tags: [deepfake-detection, face-forensics, grad-cam, keras, mobilenetv2, npr]"]
    if ev:
        overall = ev["metrics"]["overall"]
        front += ["model-index:", f"- name: {cfg.name}", "  results:", "  - task: {type: image-classification}",
                  f"    dataset: {{name: fdet developer set ({len(ev['metrics']) - 1} sources), type: custom, split: val}}",
                  "    metrics:",
                  f"    - {{type: roc_auc, value: {overall['auc']:.4f}}}",
                  f"    - {{type: balanced_accuracy, value: {overall['balanced_accuracy']:.4f}}}",
                  f"    - {{type: ece, value: {overall['ece']:.4f}}}"]
    front.append("---")
    out = ["\n".join(front), "", f"# {cfg.name} {cfg.version}", "",
           INTRO.format(margin=cfg.crop_margin, size=cfg.input_size, temperature=cfg.temperature,
                        threshold=cfg.threshold, cam_layer=cfg.cam_layer, trained_on=cfg.trained_on,
                        settings=settings, out=t.get("out", "runs/NAME"), n_patches=cfg.n_patches, patch=cfg.patch,
                        native_max=cfg.native_max, artefact_layer=cfg.artefact_layer or "-")]
    if t.get("recon"):
        out += [RECON.format(names=", ".join(t["recon"]), share=100 * t.get("recon_share", 0)), ""]
    why = cfg.metrics.get("threshold_choice")
    if why:
        out += ["## Threshold and real photos flagged", "",
                f"The threshold is the balanced-accuracy threshold on validation ({why['balanced_accuracy_threshold']:.3f}), "
                f"raised where needed so that no source flags more than {100 * why['max_real_flagged']:.0f} % of its "
                f"validation reals (that alone would need {why['fpr_threshold']:.3f}): {cfg.threshold:.3f}. "
                "Its cost is in the 'fakes caught' column of the evaluation table.", ""]
    if ev:
        srcs = list(ev["metrics"].keys())
        out += ["## Evaluation", "",
                f"Validation split of the developer set ({ev['n']} images, faces found in {ev['faces_found']}; "
                f"images without a face are scored on their centre, as the app does), at the stored threshold. "
                f"Command: `python -m detector evaluate --data ../shared/data/faces --prepared "
                f".cache/prepared/faces-native256 --model assets/model --out runs/eval` (the face crops cached by "
                f"`detector.training.prepare`, made by the app's own cropping code). Plots and the full report: "
                f"`eval/` beside this card.", "", metrics_table(ev["metrics"]), ""]
        if ev.get("shortcut_probe"):
            from . import probe

            out += ["### Shortcut probe", "",
                    "Cross-validated AUC (5 folds by group) of tiny classifiers on trivial image properties only "
                    "(width, height, file size, JPEG quality estimate, brightness, sharpness), next to the model's; "
                    "a source is flagged when the probe alone beats 0.70 -- there the model's AUC says little about "
                    "deepfake detection. Share of images with no face found, per class, beside it.", "",
                    probe.markdown(ev["shortcut_probe"], {s: m["auc"] for s, m in ev["metrics"].items()}), ""]
        if ev.get("fake_only_vs_reals"):
            for src, row in ev["fake_only_vs_reals"].items():
                out += [f"### {src} fakes against the reals of every source", "",
                        "| reals | " + " | ".join(row) + " |", "|---|" + "---|" * len(row),
                        "| AUC | " + " | ".join(_f(v) for v in row.values()) + " |", ""]
        if ev.get("robustness"):
            out += ["### Robustness", "", "AUC after degrading the face crop (drop from clean AUC in brackets):", "",
                    robustness_table(ev["robustness"], srcs), ""]
    if loso_json and loso_json.is_file():
        lo = json.loads(loso_json.read_text())
        unit = lo.get("unit", "source")
        out += [f"### Leave-one-{unit}-out (generalisation to kinds of fake it never saw)", "",
                loso_note or f"Each row: a model trained without that {unit}, scored on its images.", "",
                loso_table(lo), ""]
    if compare_json and compare_json.is_file():
        out += ["### Training recipes compared (leave-one-out folds)", "",
                compare_note or "Each row: the same leave-one-source-out protocol with one recipe change.", "",
                compare_table(json.loads(compare_json.read_text())), ""]
    if attacks_json and attacks_json.is_file():
        from .attacks import markdown as attack_markdown

        table = json.loads(attacks_json.read_text()).get("attacks")
        if table:
            out += ["### White-box attacks", "", THREAT_MODEL, ""] + ([attacks_note, ""] if attacks_note else [])
            out += [attack_markdown(table), ""]
    if hardening_json and hardening_json.is_file():
        out += ["### Adversarial hardening compared", "",
                hardening_note or ("Each row: a model and its clean validation AUC per source (as training measured "
                                   "it), the worst per-source loss against the first row, and its AUC under attack "
                                   "at eps 2 (only fakes attacked, and both classes)."), "",
                hardening_table(json.loads(hardening_json.read_text())), ""]
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


NOTES = ("training", "loso", "compare", "attacks", "hardening")  # the card's free-text sentences, by section


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
    ap.add_argument("--attacks", type=Path, help="metrics.json of `detector evaluate --attacks` (the white-box table)")
    ap.add_argument("--attacks-note", default="", help="a sentence on how the attack table was made")
    ap.add_argument("--hardening", type=Path, help="hardening.json written by python -m bench.hardening")
    ap.add_argument("--hardening-note", default="", help="a sentence on how the hardened models were made")
    ap.add_argument("--notes", type=Path,
                    help="JSON file with any of the notes above by name (training, loso, compare, attacks, "
                         "hardening), so a card can be written again by one command; a --*-note flag wins")
    ap.add_argument("--out", type=Path, help="where to write (default <model>/MODEL_CARD.md)")
    a = ap.parse_args(argv)
    notes = json.loads(a.notes.read_text()) if a.notes else {}
    unknown = set(notes) - set(NOTES)
    if unknown:
        ap.error(f"--notes {a.notes}: unknown keys {sorted(unknown)} (known: {', '.join(NOTES)})")
    note = {k: getattr(a, f"{k}_note") or notes.get(k, "") for k in NOTES}
    text = render(Path(a.model), a.eval, a.loso, note["loso"], note["training"], a.compare, note["compare"],
                  a.attacks, note["attacks"], a.hardening, note["hardening"])
    out = a.out or Path(a.model) / "MODEL_CARD.md"
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
