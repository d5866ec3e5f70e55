"""Gradio web app: a thin shell over :class:`detector.Detector` and :mod:`detector.ui`.

Run it the way Hugging Face Spaces do::

    python app.py                      # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --port 8080 --game-dir /data/game

Every decision (faces, P(fake), verdict, heatmap, message) comes from ``Detector.analyze`` and
``detector.inference.video.analyze_video``; the game, the texts and the face table come from
``detector.ui``.  This file only wires Gradio components to them.  Tabs: Detect (image), Video,
the "Can you beat the model?" game, and About (model card, limits, privacy).

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
import logging  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
from gradio.components.label import LabelConfidence, LabelData  # noqa: E402

from detector import DetectionResult, DetectorError  # noqa: E402
from detector.config import (  # noqa: E402
    DEFAULT_CAM_METHOD,
    GAME_DIR_ENV,
    MAX_VIDEO_FRAMES,
    VIDEO_FRAMES,
    VIDEO_TOP_K,
    Limits,
    ServerSettings,
    env_str,
)
from detector.inference.results import error_dict, verdict_words  # noqa: E402
from detector.inference.video import analyze_video  # noqa: E402
from detector.ui import texts  # noqa: E402
from detector.ui.choices import cam_choices, cam_method_from, video_request  # noqa: E402
from detector.ui.game import Game  # noqa: E402
from detector.ui.guard import guarded  # noqa: E402
from detector.ui.pictures import timeline_picture, write_examples  # noqa: E402
from detector.ui.tables import FACE_TABLE_HEADERS, face_rows  # noqa: E402

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


def verdict_value(res: DetectionResult) -> LabelData:
    """The Label value: heading = verdict, bars = P(fake) and P(real)."""
    p = float(res.p_fake)
    return LabelData(label=verdict_words(res.label),
                     confidences=[LabelConfidence(label="P(fake)", confidence=round(p, 4)),
                                  LabelConfidence(label="P(real)", confidence=round(1 - p, 4))])


def video_dict(vr) -> dict:
    """VideoResult.to_dict() for clients: "path" becomes "file_name" (the server's temp path is of
    no use to a client, and gradio_client treats any dict with a "path" string as a file to fetch)."""
    d = vr.to_dict()
    path = d.pop("path", None)
    d["file_name"] = Path(path).name if path else ""
    return d


# --------------------------------------------------------------------- the app


def build_demo(detector=None, game_dir: str | Path | None = None, warmup: bool = True) -> gr.Blocks:
    """The whole UI.  ``detector`` defaults to the shared :func:`detector.get_detector`."""
    if detector is None:
        from detector import get_detector  # TensorFlow is imported here, not when app.py is

        detector = get_detector()
    det = detector
    # Examples and the demo game set live in a temp dir owned by the Blocks (removed with it).
    tmp = tempfile.TemporaryDirectory(prefix="fdet-app-")
    examples = write_examples(Path(tmp.name) / "examples")
    if warmup:
        # The detector traced its graphs at load; one real call also warms the face finder's
        # image pyramid and the overlay path, so the first visitor does not wait for it.
        det.analyze(examples[0], cam_method=DEFAULT_CAM_METHOD)
    game = Game.from_folder(det, str(game_dir) if game_dir else env_str(GAME_DIR_ENV), Path(tmp.name) / "game")

    # ---- callbacks: guarded calls of Detector.analyze / analyze_video, types adapted for Gradio ----

    def detect_ui(path: str | None, cam_choice: str, opacity: float):
        if not path:
            return None, None, [], "Upload a photo, paste one, or use the webcam.", None
        out = guarded(lambda: det.analyze(path, cam_method=cam_method_from(cam_choice), opacity=float(opacity)),
                      texts.IMAGE_FAILED, "detect")
        if not out.ok:
            gr.Warning(out.error)
            return None, None, [], out.markdown("Could not analyse this file:"), error_dict(out.error)
        res = out.value
        return verdict_value(res), res.overlay, face_rows(res), texts.result_markdown(res), res.to_dict(False)

    def detect_api(image: str | None, cam_method: str | None = DEFAULT_CAM_METHOD) -> dict:
        """Analyse one image; returns the JSON result (``error`` set when the input is refused)."""
        out = guarded(lambda: det.analyze(image, cam_method=cam_method_from(cam_method), render_overlay=False),
                      texts.API_IMAGE_FAILED, "detect api")
        return out.value.to_dict() if out.ok else error_dict(out.error)

    def run_video(path: str | None, frames: float, top_k: float, cam_method: str | None):
        if not path:
            raise DetectorError("No video was given.")
        max_frames, k = video_request(frames, top_k)
        return analyze_video(det, path, max_frames=max_frames, top_k=k, cam_method=cam_method)

    def video_ui(path: str | None, frames: float, top_k: float):
        out = guarded(lambda: run_video(path, frames, top_k, DEFAULT_CAM_METHOD), texts.VIDEO_FAILED, "video")
        if not out.ok:
            gr.Warning(out.error)
            return out.markdown("Could not analyse this video:"), None, None, error_dict(out.error)
        vr = out.value
        timeline = timeline_picture(vr, det.threshold) if vr.p_fake is not None else None
        worst = vr.worst_result.overlay if vr.worst_result is not None else None
        return f"**{vr.message}**", timeline, worst, video_dict(vr)

    def video_api(video: str | None, max_frames: float = VIDEO_FRAMES, top_k: float = VIDEO_TOP_K) -> dict:
        """Analyse a video file; returns VideoResult.to_dict() (``error`` set when refused)."""
        out = guarded(lambda: video_dict(run_video(video, max_frames, top_k, None)), texts.API_VIDEO_FAILED,
                      "video api")
        return out.value if out.ok else error_dict(out.error)

    # ---- layout ----

    with gr.Blocks(title="Deepfake face detector", analytics_enabled=False,
                   delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown("# Deepfake face detector\nCalibrated P(fake) per face, with a heatmap of what the model "
                    "looked at. A screening aid, not proof: see **About**.")
        with gr.Tab("Detect"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = image_input(sources=["upload", "clipboard", "webcam"], label="Photo", elem_id="photo")
                    cam = gr.Radio(cam_choices(), value=DEFAULT_CAM_METHOD, label="Heatmap method")
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
                    n_frames = gr.Slider(4, MAX_VIDEO_FRAMES, value=VIDEO_FRAMES, step=1, label="Frames to sample")
                    top_k = gr.Slider(1, 10, value=VIDEO_TOP_K, step=1, label="Top-k frames averaged for the verdict")
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
            gr.Markdown(game.note)
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
            real_btn.click(lambda s: game.guess(s, "real"), [state], [state, game_msg, game_overlay, score],
                           api_visibility="private", **MODEL_EVENT)
            fake_btn.click(lambda s: game.guess(s, "fake"), [state], [state, game_msg, game_overlay, score],
                           api_visibility="private", **MODEL_EVENT)
            next_btn.click(game.next, [state], [state, game_img, game_msg, game_overlay, score],
                           api_visibility="private")
            demo.load(game.start, None, [state, game_img, game_msg, game_overlay, score], api_visibility="private")

        with gr.Tab("About"):
            gr.Markdown(texts.about_markdown(det, CACHE_SECONDS))

        # ---- the public API: hidden components, so clients get plain JSON back ----
        with gr.Row(visible=False):
            api_image = image_input(label="image")
            api_cam = gr.Textbox(value=DEFAULT_CAM_METHOD, label="cam_method (gradcam++, gradcam or off)")
            api_video = gr.Video(label="video")
            api_frames = gr.Number(value=VIDEO_FRAMES, precision=0, label="max_frames")
            api_topk = gr.Number(value=VIDEO_TOP_K, precision=0, label="top_k")
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
    from detector import get_detector

    try:
        Limits.from_env()  # a bad FDET_* variable stops here, with its one-sentence message
        det = get_detector(args.model_dir)  # loads and warms up the model before the port opens
    except DetectorError as err:  # missing, tampered or truncated model: one sentence, no traceback
        raise SystemExit(f"app.py: {err}") from None
    demo = build_demo(det, game_dir=args.game_dir)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, **launch_kwargs())


if __name__ == "__main__":
    main()
