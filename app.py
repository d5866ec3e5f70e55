"""Gradio web app: a thin shell over :mod:`detector.inference.pipeline`.

Run it the way Hugging Face Spaces do::

    python app.py                      # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --port 8080 --game-dir /data/game

Every decision (faces, P(fake), verdict, heatmap, message) comes from ``Detector.analyze`` and
``detector.inference.video.analyze_video``; the functions below only adapt types between Gradio components
and that API.  Tabs: Detect (image), Video, the "Can you beat the model?" game, and About
(model card, limits, privacy).

Two named API endpoints are public for ``gradio_client`` (the UI's own events are private)::

    from gradio_client import Client, handle_file
    Client("http://127.0.0.1:7860").predict(image=handle_file("photo.jpg"), cam_method="gradcam++", api_name="/detect")
    Client("http://127.0.0.1:7860").predict(video=handle_file("clip.mp4"), max_frames=16, top_k=3,
                                            api_name="/detect_video")

Both always answer with JSON; a refused input gives the same keys with ``error`` set.
"""

from __future__ import annotations

from detector.config import quiet_environment

# Privacy: no usage statistics leave the server.  Gradio reads its switch once at import, so it
# is set (not just defaulted) before ``import gradio`` below.
quiet_environment()

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from gradio.components.label import LabelConfidence, LabelData  # noqa: E402
from PIL import Image  # noqa: E402

from detector.config import GAME_DIR_ENV, Limits, ServerSettings, env_str  # noqa: E402
from detector.errors import DetectorError  # noqa: E402
from detector.inference.images import load_image  # noqa: E402
from detector.inference.results import DetectionResult, error_dict  # noqa: E402
from detector.training.data import read_folder  # noqa: E402

log = logging.getLogger("fdet.app")

# Gradio's temporary copies of uploads and outputs are deleted every CACHE_SECONDS once they are
# CACHE_SECONDS old (and all of them when the server restarts); the About tab quotes this.
CACHE_SECONDS = 600
# Two model calls at a time: the free Spaces CPU tier (and our reference machine) has 2 cores, and
# one TensorFlow call already uses a core well; more parallel calls would only slow each other
# down and multiply peak memory.  Further requests wait in a queue of at most QUEUE_SIZE, so a
# burst cannot pile up unbounded work; beyond that users are told the queue is full.
CONCURRENCY = 2
QUEUE_SIZE = 20
# Gradio applies a concurrency limit per event listener; sharing one id makes the limit above hold
# for all model calls together (UI, game and API), not for each button separately.
MODEL_EVENT = {"concurrency_id": "model", "concurrency_limit": CONCURRENCY}
MAX_VIDEO_FRAMES = 64

CAM_CHOICES = [("Grad-CAM++", "gradcam++"), ("Grad-CAM", "gradcam"), ("off", "off")]
FACE_TABLE_HEADERS = ["face #", "box (x, y, w, h)", "P(fake)", "label"]


# Two Gradio components get one method replaced on the instance.  (A subclass would do, but
# Gradio's component metaclass writes a .pyi stub next to any module that subclasses a component,
# i.e. into the repository.)


def image_input(**kwargs) -> gr.Image:
    """``gr.Image`` that hands *any* upload to our loader instead of failing inside Gradio.

    Gradio's own preprocessing opens the file with PIL first; a text file renamed ``.jpg`` would
    then end in a generic "Error" toast.  Passing the raw path on lets
    :func:`detector.inference.images.load_image` refuse it with its human message (and handle EXIF
    orientation, CMYK, 16-bit and the size limits itself).
    """
    # image_mode=None: Gradio would otherwise re-encode every non-RGB upload (RGBA, palette, CMYK,
    # 16-bit) itself -- alpha dropped onto black, our notes lost, and the whole image decoded
    # before our pixel limit is checked.  With None it passes the uploaded file on untouched.
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    strict = component.preprocess

    def preprocess(payload):
        try:
            return strict(payload)
        except Exception:  # noqa: BLE001 - any decode failure: let load_image explain it
            return getattr(payload, "path", None)

    component.preprocess = preprocess
    return component


def verdict_label(**kwargs) -> gr.Label:
    """``gr.Label`` whose heading is the model's verdict at its own threshold.

    A plain dict of confidences would head the label with the larger probability, which differs
    from the verdict when P(fake) lies between 0.5 and the calibrated threshold; this one also
    accepts a ready :class:`LabelData` (see :func:`verdict_value`).
    """
    component = gr.Label(**kwargs)
    default = component.postprocess

    def postprocess(value):
        return value if isinstance(value, LabelData) else default(value)

    component.postprocess = postprocess
    return component


# --------------------------------------------------------------------- adapters (types only)


def cam_method_from(choice: str | None) -> str | None:
    """UI/API choice ("Grad-CAM++", "gradcam", "off", ...) -> ``Detector.analyze`` cam_method."""
    c = (choice or "off").strip().lower().replace("-", "").replace(" ", "").replace("_", "")
    if c in ("off", "none", "no", "false"):
        return None
    if c in ("gradcam++", "gradcampp", "gradcamplusplus"):
        return "gradcam++"
    if c == "gradcam":
        return "gradcam"
    raise DetectorError(f"Unknown heatmap method {choice!r}: use gradcam++, gradcam or off.")


def verdict_value(res: DetectionResult) -> LabelData:
    """The Label value: heading = verdict, bars = P(fake) and P(real)."""
    p = float(res.p_fake)
    heading = "likely FAKE" if res.label == "fake" else "likely REAL"
    return LabelData(label=heading, confidences=[LabelConfidence(label="P(fake)", confidence=round(p, 4)),
                                                 LabelConfidence(label="P(real)", confidence=round(1 - p, 4))])


def face_rows(res: DetectionResult) -> list[list[Any]]:
    """One table row per scored face (or one for the whole image when no face was found)."""
    rows = []
    for i, f in enumerate(res.faces, start=1):
        box = ", ".join(str(int(v)) for v in f.box)
        name = str(i) if res.face_found else "whole image (no face)"
        rows.append([name, box, round(float(f.p_fake), 3), f.label])
    return rows


def result_markdown(res: DetectionResult) -> str:
    lines = [f"**{res.message}**"]
    lines += [f"- {n}" for n in res.notes]
    return "\n".join(lines)


def empty_outputs(message: str = "") -> tuple:
    return None, None, [], message, None


def _short_path(path: str | None) -> str:
    return Path(path).name if path else ""


# --------------------------------------------------------------------- game logic (pure)


@dataclass(frozen=True)
class GameItem:
    path: str
    truth: str  # "real" or "fake"


@dataclass(frozen=True)
class GameState:
    """One player's game: a shuffled order over the shared item list and two scores."""

    order: tuple[int, ...]
    position: int = 0
    rounds: int = 0
    user_correct: int = 0
    model_correct: int = 0
    answered: bool = False  # the current image has been guessed (a second click counts nothing)

    @property
    def current(self) -> int:
        return self.order[self.position % len(self.order)]


def list_game_items(folder: str | Path | None) -> list[GameItem]:
    """Every image under ``real/`` or ``fake/`` (any depth) of ``folder``; [] if none or no folder."""
    if not folder or not Path(folder).is_dir():
        return []
    return [GameItem(s.path, "fake" if s.label == 1 else "real") for s in read_folder(folder)]


def new_game(n_items: int, seed: int | None = None) -> GameState:
    if n_items <= 0:
        raise ValueError("a game needs at least one image")
    order = list(range(n_items))
    random.Random(seed).shuffle(order)
    return GameState(order=tuple(order))


def record_guess(state: GameState, guess: str, truth: str, model_label: str) -> GameState:
    """Score one round; guessing the same image twice changes nothing."""
    if state.answered:
        return state
    return replace(state, rounds=state.rounds + 1, answered=True,
                   user_correct=state.user_correct + int(guess == truth),
                   model_correct=state.model_correct + int(model_label == truth))


def next_image(state: GameState) -> GameState:
    return replace(state, position=(state.position + 1) % len(state.order), answered=False)


def score_text(state: GameState) -> str:
    return f"You {state.user_correct}/{state.rounds} — Model {state.model_correct}/{state.rounds}"


def make_demo_game_set(detector, out_dir: str | Path, seed: int = 0) -> Path:
    """A tiny built-in game set, made at run time from package-shipped photos.

    real: the astronaut and Grace Hopper portraits (and mirror images); fake: the same faces
    self-blended with :func:`detector.training.sbi.self_blend` (a synthetic blend, not a real deepfake)
    and pasted back into the photo.  Writes ``out_dir/real`` and ``out_dir/fake``.
    """
    import cv2

    from detector.inference.faces import crop_square, square_crop_box
    from detector.training.sbi import self_blend

    out = Path(out_dir)
    (out / "real").mkdir(parents=True, exist_ok=True)
    (out / "fake").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blend_size = 256
    for name, rgb in example_photos().items():
        if name == "coffee":
            continue
        h, w = rgb.shape[:2]
        faces = detector.finder.detect(rgb)
        if not faces:
            continue
        face = faces[0]
        # What the player sees: the face with some context, at most 512 px.
        view = square_crop_box(face, w, h, 2.2)
        real = crop_square(rgb, view, min(512, view[2]))
        Image.fromarray(real).save(out / "real" / f"{name}.png")
        Image.fromarray(real[:, ::-1]).save(out / "real" / f"{name}_mirror.png")
        x0, y0, side = square_crop_box(face, w, h, detector.crop_cfg.margin)
        k = blend_size / side
        marks = {n: (int((x - x0) * k), int((y - y0) * k)) for n, (x, y) in face.landmarks.items()}
        for i in range(2):
            crop = crop_square(rgb, (x0, y0, side), blend_size)
            fake_crop, mask = self_blend(crop, marks or None, rng)
            # Paste back through the blend mask, so pixels outside it stay exactly as they were
            # (a plain paste would leave a resampled square around the face: an easy giveaway).
            up = cv2.resize(fake_crop, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            m = cv2.resize(mask, (side, side), interpolation=cv2.INTER_LINEAR)[..., None]
            pasted = rgb.copy()
            region = pasted[y0:y0 + side, x0:x0 + side].astype(np.float32)
            pasted[y0:y0 + side, x0:x0 + side] = np.clip(up * m + region * (1 - m), 0, 255).astype(np.uint8)
            fake = crop_square(pasted, view, min(512, view[2]))
            Image.fromarray(fake).save(out / "fake" / f"{name}_blend{i + 1}.png")
    return out


# --------------------------------------------------------------------- example photos


def example_photos() -> dict[str, np.ndarray]:
    """Package-shipped photos: scikit-image's astronaut and coffee, matplotlib's Grace Hopper."""
    import matplotlib.cbook
    import skimage.data

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper, "coffee": skimage.data.coffee()}


def write_examples(out_dir: str | Path) -> list[str]:
    """Write the example photos as JPEGs into ``out_dir`` (a temp dir, never the repository)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in example_photos().items():
        p = out / f"{name}.jpg"
        Image.fromarray(rgb).save(p, quality=95)
        paths.append(str(p))
    return paths


# --------------------------------------------------------------------- text for the About tab


def about_markdown(detector) -> str:
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
                ("calibration temperature", info["temperature"]), ("face detector", info["face_detector"]),
                ("inference engine", info.get("engine", "tensorflow")),
                ("trained on", facts.get("trained_on", "unknown"))]
        for key in ("auc", "accuracy", "balanced_accuracy", "ece"):
            if overall.get(key) is not None:
                rows.append((f"validation {key}", round(float(overall[key]), 3)))
        model_part = ("## Model\n\n(No MODEL_CARD.md next to the model; facts from model.json.)\n\n"
                      "| fact | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows))
    minutes = CACHE_SECONDS // 60
    limits = Limits.from_env()
    return f"""{model_part}

## What this detector can and cannot do

- It looks at **faces**: each face is cropped and scored by a small CNN (MobileNetV2, 160 px); the most
  suspicious face decides the image. Without a face it scores the centre of the image, which is unreliable.
- P(fake) is calibrated on the validation data the model was trained with. On new generators, face-swap
  tools, heavy compression, tiny or blurred faces, filters, drawings or screenshots it can be confidently wrong.
- It is not proof. A "real" verdict does not certify a photo, and a "fake" verdict is a reason to check,
  not evidence. Anyone who knows the model can fool it.
- The heatmap (Grad-CAM / Grad-CAM++) shows which parts of each face crop drove the score, on a coarse
  5x5 grid; it is an aid to reading the score, not a map of the manipulation.
- Videos are judged on sampled frames: P(fake) of a video is the mean of its top-k frame scores.
- Limits: uploads up to {limits.max_upload_bytes / 1e6:.0f} MB and {limits.max_pixels / 1e6:.0f} megapixels,
  at most {limits.max_faces} faces per image.

## Privacy: what happens to your upload

- Your image or video is sent to this server. Gradio stores a temporary copy in its cache folder so it can be
  passed to the model; the app reads it into memory, analyses it and sends the result back. The pictures shown
  back to you (overlay, timeline) are temporary files in the same cache.
- Gradio's cache cleaner deletes these temporary files every {minutes} minutes once they are {minutes} minutes old,
  and all of them when the server restarts.
- Nothing is kept: no flagging, no database, no copies. Nothing about your upload is logged (no file names,
  images or results), and Gradio's usage analytics are switched off.
- The game tab only shows images from the server's own folder (or a built-in demo set).
- If the operator starts the app with `--share`, traffic passes through Gradio's share tunnel.
"""


# --------------------------------------------------------------------- the app


def _default_game_dir(game_dir: str | Path | None) -> str | None:
    return str(game_dir) if game_dir else env_str(GAME_DIR_ENV)


def build_demo(detector=None, game_dir: str | Path | None = None, warmup: bool = True) -> gr.Blocks:
    """The whole UI.  ``detector`` defaults to the shared :func:`detector.inference.pipeline.get_detector`."""
    if detector is None:
        from detector.inference.pipeline import get_detector

        detector = get_detector()
    det = detector
    # Examples and the demo game set live in a temp dir owned by the Blocks (removed with it).
    tmp = tempfile.TemporaryDirectory(prefix="fdet-app-")
    examples = write_examples(Path(tmp.name) / "examples")
    if warmup:
        # The detector traced its graphs at load; one real call also warms the face finder's
        # image pyramid and the overlay path, so the first visitor does not wait for it.
        det.analyze(examples[0], cam_method="gradcam++")

    # ---- callbacks: type adapters around Detector.analyze / analyze_video ----

    def detect_ui(path: str | None, cam_choice: str, opacity: float):
        if not path:
            return empty_outputs("Upload a photo, paste one, or use the webcam.")
        try:
            res = det.analyze(path, cam_method=cam_method_from(cam_choice), opacity=float(opacity))
        except DetectorError as err:
            gr.Warning(str(err))
            return None, None, [], f"**Could not analyse this file:** {err}", error_dict(str(err))
        except Exception as err:  # noqa: BLE001 - the server keeps serving; no traceback to the user
            log.error("detect failed: %s", type(err).__name__)
            msg = "Something went wrong while analysing this image. Please try another file."
            gr.Warning(msg)
            return None, None, [], f"**{msg}**", error_dict(msg)
        return verdict_value(res), res.overlay, face_rows(res), result_markdown(res), res.to_dict(False)

    def detect_api(image: str | None, cam_method: str | None = "gradcam++") -> dict:
        """Analyse one image; returns the JSON result (``error`` set when the input is refused)."""
        try:
            return det.analyze(image, cam_method=cam_method_from(cam_method), render_overlay=False).to_dict()
        except DetectorError as err:
            return error_dict(str(err))
        except Exception as err:  # noqa: BLE001
            log.error("detect api failed: %s", type(err).__name__)
            return error_dict("The image could not be analysed.")

    def run_video(path: str | None, frames: float, top_k: float, cam_method: str | None):
        from detector.inference.video import analyze_video

        if not path:
            raise DetectorError("No video was given.")
        max_frames = int(min(max(int(frames or 16), 1), MAX_VIDEO_FRAMES))
        k = int(min(max(int(top_k or 3), 1), max_frames))
        return analyze_video(det, path, max_frames=max_frames, top_k=k, cam_method=cam_method)

    def video_dict(vr) -> dict:
        d = vr.to_dict()
        # "path" becomes "file_name": the server's temp path is of no use to a client, and
        # gradio_client treats any dict with a "path" string as a file to download.
        d["file_name"] = _short_path(d.pop("path", None))
        return d

    def video_ui(path: str | None, frames: float, top_k: float):
        try:
            vr = run_video(path, frames, top_k, "gradcam++")
        except DetectorError as err:
            gr.Warning(str(err))
            return f"**Could not analyse this video:** {err}", None, None, error_dict(str(err))
        except Exception as err:  # noqa: BLE001
            log.error("video failed: %s", type(err).__name__)
            msg = "This video could not be analysed. Please try another file (MP4, WebM, MOV, AVI)."
            gr.Warning(msg)
            return f"**{msg}**", None, None, error_dict(msg)
        timeline = None
        if vr.p_fake is not None:
            from detector.inference.video import timeline_png

            # Rendered to a private temp file, read back and deleted at once: only Gradio's
            # cache (cleaned every CACHE_SECONDS) holds the picture sent to the browser.
            with tempfile.TemporaryDirectory(prefix="fdet-timeline-") as d:
                png = timeline_png(vr, Path(d) / "timeline.png", det.threshold)
                with Image.open(png) as im:
                    timeline = np.asarray(im.convert("RGB"))
        worst = vr.worst_result.overlay if vr.worst_result is not None else None
        return f"**{vr.message}**", timeline, worst, video_dict(vr)

    def video_api(video: str | None, max_frames: float = 16, top_k: float = 3) -> dict:
        """Analyse a video file; returns VideoResult.to_dict() (``error`` set when refused)."""
        try:
            return video_dict(run_video(video, max_frames, top_k, None))
        except DetectorError as err:
            return error_dict(str(err))
        except Exception as err:  # noqa: BLE001
            log.error("video api failed: %s", type(err).__name__)
            return error_dict("The video could not be analysed.")

    # ---- game ----

    configured = _default_game_dir(game_dir)
    items = list_game_items(configured)
    if items:
        game_note = f"Images from the game folder ({len(items)} images)."
    else:
        items = list_game_items(make_demo_game_set(det, Path(tmp.name) / "game"))
        why = (f"The folder `{configured}` has no images under `real/` and `fake/`." if configured
               else "No game folder is configured.")
        game_note = (f"{why} Set `{GAME_DIR_ENV}=/path/to/folder` or start with `python app.py --game-dir "
                     "/path/to/folder` (a folder with `real/` and `fake/` subfolders, any depth).\n\n"
                     "**Demo set:** the fakes below are *synthetic self-blends* made from the real photos "
                     "(the training trick, not real deepfakes), so this only demonstrates the game.")

    @functools.lru_cache(maxsize=64)
    def game_result(index: int) -> DetectionResult:
        return det.analyze(items[index].path, cam_method="gradcam++")

    def game_picture(state: GameState) -> np.ndarray | None:
        try:  # shown as pixels, never by file name (the path would give the answer away)
            return load_image(items[state.current].path, det.limits).rgb
        except DetectorError:
            return None

    def game_start():
        if not items:
            return None, None, "No images available.", None, ""
        state = new_game(len(items))
        return state, game_picture(state), "Real or fake? Make your guess.", None, score_text(state)

    def game_guess(state: GameState | None, guess: str):
        if state is None:
            return state, "Press **Next image** to start.", None, ""
        item = items[state.current]
        try:
            res = game_result(state.current)
        except DetectorError as err:
            return state, f"This image could not be analysed: {err}", None, score_text(state)
        already = state.answered
        state = record_guess(state, guess, item.truth, res.label)
        you = "right" if guess == item.truth else "wrong"
        model = "right" if res.label == item.truth else "wrong"
        text = (f"Truth: **{item.truth.upper()}**. You said {guess} ({you}); the model says "
                f"{res.label} with P(fake) = {res.p_fake:.2f} ({model}).")
        if already:
            text += " (Already scored: press **Next image**.)"
        return state, text, res.overlay, score_text(state)

    def game_next(state: GameState | None):
        if not items:
            return game_start()
        state = new_game(len(items)) if state is None else next_image(state)
        return state, game_picture(state), "Real or fake? Make your guess.", None, score_text(state)

    # ---- layout ----

    with gr.Blocks(title="Deepfake face detector", analytics_enabled=False,
                   delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown("# Deepfake face detector\nCalibrated P(fake) per face, with a heatmap of what the model "
                    "looked at. A screening aid, not proof: see **About**.")
        with gr.Tab("Detect"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = image_input(sources=["upload", "clipboard", "webcam"], label="Photo", elem_id="photo")
                    cam = gr.Radio(CAM_CHOICES, value="gradcam++", label="Heatmap method")
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity")
                    run_btn = gr.Button("Detect", variant="primary")
                with gr.Column(scale=1):
                    verdict = verdict_label(label="Verdict", num_top_classes=2, elem_id="verdict")
                    overlay = gr.Image(label="Heatmap and faces", type="numpy", interactive=False,
                                       elem_id="overlay")
                    message = gr.Markdown(elem_id="message")
            faces = gr.Dataframe(headers=FACE_TABLE_HEADERS, datatype=["str", "str", "number", "str"],
                                 value=[], interactive=False, label="Faces")
            with gr.Accordion("JSON result", open=False):
                result_json = gr.JSON(label="Result (heatmaps omitted; the /detect API includes them)")
            detect_outputs = [verdict, overlay, faces, message, result_json]
            # Picking an example only fills the photo box; its change event runs the detector.
            gr.Examples(examples=[[p] for p in examples], inputs=[image_in], cache_examples=False,
                        example_labels=["Astronaut (scikit-image)", "Grace Hopper (matplotlib)",
                                        "No face: coffee (scikit-image)"])
            for trigger in (run_btn.click, image_in.change, cam.change, opacity.release):
                trigger(detect_ui, [image_in, cam, opacity], detect_outputs, api_visibility="private", **MODEL_EVENT)

        with gr.Tab("Video"):
            gr.Markdown("Frames are sampled evenly; each frame's score is its most suspicious face, and the "
                        "video's P(fake) is the mean of the top-k frame scores. The preview needs a video your "
                        "browser can play (H.264 MP4 or WebM); other codecs are still analysed.")
            with gr.Row():
                with gr.Column():
                    video_in = gr.Video(sources=["upload"], label="Video", elem_id="video")
                    n_frames = gr.Slider(4, MAX_VIDEO_FRAMES, value=16, step=1, label="Frames to sample")
                    top_k = gr.Slider(1, 10, value=3, step=1, label="Top-k frames averaged for the verdict")
                    video_btn = gr.Button("Analyse video", variant="primary")
                with gr.Column():
                    video_msg = gr.Markdown(elem_id="video_message")
                    timeline = gr.Image(label="P(fake) over time", type="numpy", interactive=False)
                    worst = gr.Image(label="Most suspicious frame", type="numpy", interactive=False)
            with gr.Accordion("JSON result", open=False):
                video_json = gr.JSON(label="Video result")
            video_btn.click(video_ui, [video_in, n_frames, top_k], [video_msg, timeline, worst, video_json],
                            api_visibility="private", **MODEL_EVENT)

        with gr.Tab("Can you beat the model?"):
            gr.Markdown(game_note)
            state = gr.State(None)
            with gr.Row():
                with gr.Column():
                    game_img = gr.Image(label="Real or fake?", type="numpy", interactive=False, elem_id="game")
                    with gr.Row():
                        real_btn = gr.Button("Real")
                        fake_btn = gr.Button("Fake")
                        next_btn = gr.Button("Next image", variant="secondary")
                with gr.Column():
                    score = gr.Markdown(elem_id="score")
                    game_msg = gr.Markdown()
                    game_overlay = gr.Image(label="What the model looked at", type="numpy", interactive=False)
            real_btn.click(lambda s: game_guess(s, "real"), [state], [state, game_msg, game_overlay, score],
                           api_visibility="private", **MODEL_EVENT)
            fake_btn.click(lambda s: game_guess(s, "fake"), [state], [state, game_msg, game_overlay, score],
                           api_visibility="private", **MODEL_EVENT)
            next_btn.click(game_next, [state], [state, game_img, game_msg, game_overlay, score],
                           api_visibility="private")
            demo.load(game_start, None, [state, game_img, game_msg, game_overlay, score], api_visibility="private")

        with gr.Tab("About"):
            gr.Markdown(about_markdown(det))

        # ---- the public API: hidden components, so clients get plain JSON back ----
        with gr.Row(visible=False):
            api_image = image_input(label="image")
            api_cam = gr.Textbox(value="gradcam++", label="cam_method (gradcam++, gradcam or off)")
            api_video = gr.Video(label="video")
            api_frames = gr.Number(value=16, precision=0, label="max_frames")
            api_topk = gr.Number(value=3, precision=0, label="top_k")
            api_out = gr.JSON(label="result")
            api_video_out = gr.JSON(label="video result")
            api_btn = gr.Button("detect")
            api_video_btn = gr.Button("detect_video")
        api_btn.click(detect_api, [api_image, api_cam], api_out, api_name="detect", **MODEL_EVENT)
        api_video_btn.click(video_api, [api_video, api_frames, api_topk], api_video_out, api_name="detect_video",
                            **MODEL_EVENT)

    demo._fdet_tmp = tmp  # keep the temp dir alive exactly as long as the app
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_kwargs(limits: Limits | None = None) -> dict[str, Any]:
    """Settings every launch shares (the tests use them too)."""
    limits = limits or Limits.from_env()
    # Uploads above the loader's own byte limit are refused by Gradio before they reach disk.
    # SSR needs a Node server and adds nothing here; no MCP server.
    return {"max_file_size": limits.max_upload_bytes, "ssr_mode": False, "mcp_server": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Start the deepfake face detector web app (Gradio).")
    try:
        env = ServerSettings.from_env()
    except DetectorError as err:  # e.g. GRADIO_SERVER_PORT=http
        p.error(str(err))
    p.add_argument("--host", default=env.host,
                   help="interface to listen on (env GRADIO_SERVER_NAME; 0.0.0.0 for all, as in Docker/Spaces)")
    p.add_argument("--port", type=int, default=env.port,
                   help="port (env GRADIO_SERVER_PORT, default 7860)")
    p.add_argument("--share", action="store_true", default=env.share,
                   help="also open a temporary public *.gradio.live link (env FDET_SHARE=1); traffic then "
                        "passes through Gradio's share server")
    p.add_argument("--game-dir", default=env.game_dir,
                   help=f"folder with real/ and fake/ subfolders (any depth) for the game tab (env {GAME_DIR_ENV}); "
                        "without it a small built-in demo set of synthetic blends is used")
    p.add_argument("--model-dir", default=None,
                   help="model folder with model.keras and model.json (env FDET_MODEL_DIR, default assets/model)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Warnings and errors only: request-level logging could record what users upload.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from detector.inference.pipeline import get_detector

    try:
        Limits.from_env()  # a bad FDET_* variable stops here, with its one-sentence message
        det = get_detector(args.model_dir)  # loads and warms up the model before the port opens
    except DetectorError as err:  # missing, tampered or truncated model: one sentence, no traceback
        raise SystemExit(f"app.py: {err}") from None
    demo = build_demo(det, game_dir=args.game_dir)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
