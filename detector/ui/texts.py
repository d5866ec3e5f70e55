"""Words both apps show: the About prose (built from the model card or ``model.json``), the
result as Markdown, and the sentences for failures.

Verdict words ("likely FAKE", "NO SIGN FOUND", "UNCERTAIN", ...), the score's bands and what a "no sign
found" is worth come from :mod:`detector.inference.results`, so the pipeline's messages, the report and the
apps' headings say the same thing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import Limits
from ..inference.results import VERDICT_WORDS, DetectionResult, no_sign_worth, scale_words
from ..inference.unseen import unseen_fakes_missed
from .choices import SAME_MAPS

# One sentence per kind of unexpected failure (a refused input shows its own reason instead).
IMAGE_FAILED = "Something went wrong while analysing this image. Please try another file."
VIDEO_FAILED = "This video could not be analysed. Please try another file (MP4, WebM, MOV, AVI)."
API_IMAGE_FAILED = "The image could not be analysed."
API_VIDEO_FAILED = "The video could not be analysed."


def megabytes(limits: Limits) -> int:
    """The upload limit in whole MB as the upload widgets count them (2**20 bytes, rounded up): one number
    on every page (Streamlit's own uploader says it too)."""
    return max(1, -(-limits.max_upload_bytes // 2**20))


def model_caption(info: dict) -> str:
    """The line naming the model under a result (Streamlit): the threshold rounded as everywhere else."""
    t = info.get("threshold")
    threshold = f"{float(t):.2f}" if isinstance(t, (int, float)) else "unknown"
    return f"Model {info.get('name')} {info.get('version')}, threshold {threshold}, faces by {info.get('face_detector')}."


def worth_line(model_dir) -> str:
    """What a "no sign found" is worth for the model in ``model_dir`` ("" when its files do not say)."""
    return no_sign_worth(unseen_fakes_missed(model_dir))


def launch_banner(host: str, port: int, share_url: str | None) -> str:
    """What the server prints once it listens: where to open it, and how to share it with this app's own flag."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    lines = [f"* Running on http://{shown}:{port}"]
    lines.append(f"* Public link: {share_url}" if share_url else
                 "* For a temporary public link, start with --share (python app.py --share).")
    return "\n".join(lines)


def result_markdown(res: DetectionResult) -> str:
    """What the headline does not say: one bullet per note (conversions, frames used) and the faces
    left unscored; "" when there is nothing to add (the headline already says the verdict and the score)."""
    lines = [f"- {n}" for n in res.notes]
    if res.faces_skipped:
        more = "1 more small face was" if res.faces_skipped == 1 else f"{res.faces_skipped} more small faces were"
        lines.append(f"- {more} not scored (the limit is {len(res.faces)} per image).")
    return "\n".join(lines)


def model_markdown(detector) -> str:
    """The model card (its Hub metadata stripped), or a table of facts from ``model.json`` without one."""
    card = Path(detector.model_dir) / "MODEL_CARD.md"
    if card.is_file():
        model_part = card.read_text(encoding="utf-8")
        if model_part.startswith("---\n") and "\n---\n" in model_part[4:]:
            # Hugging Face metadata (YAML front matter) is for the Hub, not for people
            model_part = model_part[4:].split("\n---\n", 1)[1]
    else:
        info = detector.model_info()
        facts = {}
        meta = Path(detector.model_dir) / "model.json"
        if meta.is_file():
            try:
                facts = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                facts = {}
        overall = (facts.get("metrics") or {}).get("val", {}).get("overall", {})
        rows = [("name", info["name"]), ("version", info["version"]), ("architecture", info["architecture"]),
                ("input size", f"{info['input_size']} px"), ("decision threshold", info["threshold"]),
                ("calibration temperature", info["temperature"]), ("face finder", info["face_detector"]),
                ("inference engine", info.get("engine", "tensorflow")),
                ("trained on", facts.get("trained_on", "unknown"))]
        for key in ("auc", "accuracy", "balanced_accuracy", "ece"):
            if overall.get(key) is not None:
                rows.append((f"validation {key}", round(float(overall[key]), 3)))
        model_part = ("## Model\n\n(No MODEL_CARD.md next to the model; facts from model.json.)\n\n"
                      "| fact | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))
    return model_part


def about_markdown(detector, cache_seconds: int, limits: Limits | None = None) -> str:
    """The web app's About tab, in plain words: what the detector can and cannot do, what the
    provenance panel means, and what happens to an upload.  The model card goes behind an accordion
    (:func:`model_markdown`).

    ``detector`` needs ``threshold``; ``cache_seconds`` is how often (and after how long) the
    server's cache cleaner removes uploads.
    """
    minutes = cache_seconds // 60
    limits = limits or Limits.from_env()
    t = float(getattr(detector, "threshold", 0.5))
    worth = worth_line(getattr(detector, "model_dir", None))
    worth = f"\n  {worth}" if worth else ""
    return f"""## What this detector can and cannot do

- **It looks at faces.** Each face is found, cropped and scored by a small neural network trained by this
  project. The score is P(fake): the model's calibrated probability that the face was manipulated or generated.
  The most suspicious face decides the picture.
- **Four answers**, by the score: {scale_words(t)}. *likely FAKE* is red, *{VERDICT_WORDS["real"]}* green and
  *UNCERTAIN* amber: the band around the threshold ({t:.2f}) where the model cannot tell. *NO FACE* (grey): no
  face was found, the picture was not assessed, and the score of its centre is shown for information only.
- **{VERDICT_WORDS["real"]} is not "real".** It says the model found no sign of manipulation, not that the photo
  is genuine: the model misses most fakes from generators and editing tools it never saw.{worth}
- **It is not proof.** A "fake" answer is a reason to check, not evidence. The model can be confidently wrong
  on heavy compression, tiny or blurred faces, filters, drawings and screenshots. Anyone who knows the model can
  fool it.
- **The heatmap** shows which parts of each face drove its verdict, in two colour scales: yellow to red is
  evidence *for* fake (faces at or above the threshold), light to dark blue is evidence *against* it (faces below
  the threshold: what made the model find no sign). An aid to reading the score, not a map of the
  manipulation. {SAME_MAPS} Boxes are numbered like the rows of the face table.
- **Videos** are judged on sampled frames: a video's P(fake) is the mean of its top-k frame scores.
- **Limits:** uploads up to {megabytes(limits)} MB and {limits.max_pixels / 1e6:.0f} megapixels,
  at most {limits.max_faces} faces per image.

## File metadata (provenance)

Beside the model's score, the detector reads what the file itself says about its origin: signed Content
Credentials (C2PA: who signed, which tool, whether it declares AI generation or editing), the IPTC
"digital source type" (e.g. *trainedAlgorithmicMedia*: made by generative AI), and traces that image
generators and editors leave (Stable Diffusion / ComfyUI settings, a Software or CreatorTool tag).

- A generator's manifest or tag is **strong evidence** of AI content, if it is genuine.
- **No metadata proves nothing**: most websites and messaging apps strip it, and a forger removes it first.
- Metadata **can be forged** unless a C2PA signature validates: anyone can type a tag into a file or copy it.

## Privacy: what happens to your upload

- Your image or video is sent to this server. Gradio stores a temporary copy in its cache folder so it can be
  passed to the model; the app reads it into memory, analyses it and sends the result back. The pictures shown
  back to you (overlay, thumbnails, timeline) are temporary files in the same cache; a video's browser preview is
  made in the app's own temporary folder.
- Gradio's cache cleaner deletes these temporary files every {minutes} minutes once they are {minutes} minutes old,
  and all of them when the server restarts; previews older than {minutes} minutes are deleted when the next one is
  made, and all of them when the app stops.
- While your page is open, the server holds your last result in your session's memory, so that moving the
  opacity slider needs no new analysis; it goes with your session.
- Nothing is kept: no flagging, no database, no copies. Nothing about your upload is logged (no file names,
  images or results), and Gradio's usage analytics are switched off.
- The game tab only shows images from the server's own folder (or a built-in demo set).
- If the operator starts the app with `--share`, traffic passes through Gradio's share tunnel.
"""


def streamlit_about(limits: Limits) -> str:
    """The Streamlit page's "About this detector" text."""
    return f"""
**What it does.** Each face in the photo is found (MTCNN), cropped and scored by a CNN trained by
this project (MobileNetV2 on the face at 160 px, beside a small network that reads the crop's finest
pixel detail at its own resolution), which gives a calibrated probability that the face is fake. The
most suspicious face decides the image. The heatmap (Grad-CAM++ by default) shows which parts of each
face crop drove the verdict.

**Four answers.** likely FAKE, {VERDICT_WORDS["real"]} (the model found no sign of manipulation: that does
not show the photo is genuine), UNCERTAIN (the score is close to the threshold: the model cannot tell) and
NO FACE (nothing was assessed; the centre's score is for information only). The heatmap is yellow to red
where it shows evidence for fake and light to dark blue where it shows evidence against it.

**File metadata.** The page also reads what the file says about its origin (C2PA Content Credentials,
IPTC digital source type, generator and editor tags). A generator tag is strong evidence of AI content if
genuine; no metadata proves nothing (most sites strip it); unsigned metadata can be forged.

**Limits.** This is a screening aid, not proof. {VERDICT_WORDS["real"]} does not certify a photo and a
"fake" verdict is a reason to look closer. The model can be confidently wrong on new generators and
face-swap tools, heavy compression, tiny or blurred faces, filters, drawings and screenshots. Without a
face it scores the centre of the picture, which is unreliable. Anyone who knows the model can fool it.
Uploads are limited to {megabytes(limits)} MB and {limits.max_pixels / 1e6:.0f} MP;
at most {limits.max_faces} faces per image are scored.

**Privacy.** Your upload is processed in memory and is not stored: no copy is written to disk, no
database, no logging of images, file names or results. The last picture and its result are kept in this
server's memory, in your session only, so that moving a slider does not re-run the model; they are replaced
by your next upload and dropped when your session ends (when you close the tab).
"""
