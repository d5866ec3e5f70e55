"""Gradio web app: a thin shell over :class:`detector.Detector` and :mod:`detector.ui`.

Run it the way Hugging Face Spaces do::

    python app.py                      # http://127.0.0.1:7860
    python app.py --host 0.0.0.0 --port 8080 --game-dir /data/game

Every decision (faces, P(fake), verdict, heatmap, message) comes from ``Detector.analyze`` and
``detector.inference.video.analyze_video``; the game, the texts, the panels and the face table come
from ``detector.ui``.  This file only wires Gradio components to them.  Tabs: Detect (image), Video,
the "Can you beat the model?" game, and About (what it can and cannot do, provenance, privacy, and
the model card behind an accordion).

A plain REST endpoint, ``POST /api/v1/detect`` (multipart ``image``, optional ``cam_method``), is
served by the same server (:mod:`detector.ui.rest`; docs at ``/api/v1/docs``).  Two named API
endpoints are public for ``gradio_client`` (the UI's own events are private)::

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

if __name__ == "__main__":
    # `python app.py --help` and usage errors answer here, before the imports below (Gradio alone
    # takes seconds); main() parses the same arguments again.
    from detector.ui.server_args import parse_args as _parse_early

    _parse_early()

import logging  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from detector import DetectorError  # noqa: E402
from detector.config import (  # noqa: E402
    DEFAULT_CAM_METHOD,
    GAME_DIR_ENV,
    MAX_VIDEO_FRAMES,
    VIDEO_FRAMES,
    VIDEO_TOP_K,
    Limits,
    env_str,
)
from detector.inference.images import load_image  # noqa: E402
from detector.inference.results import error_dict  # noqa: E402
from detector.inference.video import VIDEO_SUFFIXES, analyze_video  # noqa: E402
from detector.ui import panels, texts  # noqa: E402
from detector.ui.choices import SAME_MAPS, api_cam_label, cam_choices, cam_method_from, video_request  # noqa: E402
from detector.ui.game import Game  # noqa: E402
from detector.ui.guard import guarded  # noqa: E402
from detector.ui.pictures import (  # noqa: E402
    EXAMPLE_LABELS,
    reblend,
    rethumb,
    timeline_picture,
    video_preview,
    write_examples,
)
from detector.ui.rest import PREFIX, rest_router  # noqa: E402
from detector.ui.server_args import parse_args  # noqa: E402,F401 - app.parse_args, as before
from detector.ui.workdir import WorkDir, hold_gradio_cache, remove_stale, stop_on_signals  # noqa: E402

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
IMAGE_HEIGHT = 460  # px: fixed picture heights, so the page does not jump as image sizes change
# The same letters offline and online: system fonts only (the default theme's web font is not
# always reachable, and a half-loaded one draws some glyphs in a fallback face).
FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "DejaVu Sans", "Liberation Sans",
         "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "DejaVu Sans Mono", "Liberation Mono", "monospace"]
CSS = """
#overlay img, #game img, #game_overlay img { object-fit: contain; }
.fdet-faces table, .fdet-faces thead, .fdet-faces tbody, .fdet-faces tr, .fdet-faces th, .fdet-faces td {
  border-color: #e3e3e8 !important; border-left: none !important; border-right: none !important; }
#faces, #faces .prose { max-width: 100%; min-width: 0; overflow-x: visible; }
"""
# An upload that is not a picture would leave the photo box showing a broken-image sliver beside the
# error; hide a picture there that fails to load (the error message says what happened).
HEAD = """<script>
document.addEventListener("error", function (e) {
  var t = e.target;
  if (t && t.tagName === "IMG" && t.closest && t.closest("#photo")) { t.style.display = "none"; }
}, true);
</script>"""


# Two Gradio components get one method replaced on the instance.  (A subclass would do, but
# Gradio's component metaclass writes a .pyi stub next to any module that subclasses a component,
# i.e. into the repository.)


def image_input(**kwargs) -> gr.Image:
    """``gr.Image`` that hands *any* upload to our loader instead of failing inside Gradio.

    Gradio's own preprocessing opens the file with PIL first; a text file renamed ``.jpg`` would
    then end in a generic "Error" toast.  Passing the raw path on lets
    :func:`detector.inference.images.load_image` refuse it with its human message (and handle EXIF
    orientation, CMYK, 16-bit and the size limits itself).  The file reaches the detector as it was
    uploaded, metadata included, so its provenance can be read.
    """
    # image_mode=None: Gradio would otherwise re-encode every non-RGB upload (RGBA, palette, CMYK,
    # 16-bit) itself -- alpha dropped onto black, our notes lost, metadata stripped, and the whole
    # image decoded before our pixel limit is checked.  With None it passes the uploaded file on untouched.
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    strict = component.preprocess

    def preprocess(payload):
        try:
            return strict(payload)
        except Exception:  # noqa: BLE001 - any decode failure: let load_image explain it
            return getattr(payload, "path", None)

    component.preprocess = preprocess
    return component


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
    gate = threading.BoundedSemaphore(CONCURRENCY)  # model calls at once: web page, gradio_client and REST together
    # Examples, the demo game set and video previews live in a temp dir owned by the Blocks (removed with
    # it, on Ctrl-C and SIGTERM too); folders left by processes that were killed outright go first.
    remove_stale()
    tmp = WorkDir()
    hold_gradio_cache(tmp)  # uploads cached by Gradio live (and go) with it
    examples = write_examples(Path(tmp.name) / "examples")
    if warmup:
        # The detector traced its graphs at load; one real call also warms the face finder's
        # image pyramid and the overlay path, so the first visitor does not wait for it.
        det.analyze(examples[0], cam_method=DEFAULT_CAM_METHOD)
    game = Game.from_folder(det, str(game_dir) if game_dir else env_str(GAME_DIR_ENV), Path(tmp.name) / "game")

    def analyze(*args, **kwargs):
        with gate:
            return det.analyze(*args, **kwargs)

    # ---- callbacks: guarded calls of Detector.analyze / analyze_video, types adapted for Gradio ----

    def detect_ui(path: str | None, cam_choice: str, opacity: float):
        if not path:
            return "", None, "Upload a photo, paste one, or use the webcam.", "", "", None, None
        out = guarded(lambda: analyze(path, cam_method=cam_method_from(cam_choice), opacity=float(opacity)),
                      texts.IMAGE_FAILED, "detect")
        if not out.ok:
            gr.Warning(out.error)
            return "", None, out.markdown("Could not analyse this file:"), "", "", error_dict(out.error), None
        res = out.value
        # The result stays in this session's state, so a new opacity only re-blends (no model pass).
        return (panels.headline_html(res), res.overlay, texts.result_markdown(res),
                panels.provenance_html(res.provenance), panels.face_table_html(res), res.to_dict(False), (path, res))

    def reopacity(last, opacity: float):
        """The overlay and thumbnails at a new opacity, from the last result (slider or its number box)."""
        if not last:
            return gr.skip(), gr.skip()
        path, res = last
        out = guarded(lambda: load_image(path, det.limits).rgb, texts.IMAGE_FAILED, "opacity")
        if not out.ok:
            return gr.skip(), gr.skip()
        rgb = out.value
        return reblend(rgb, res, float(opacity)), panels.face_table_html(res, rethumb(rgb, res, float(opacity)))

    def detect_api(image: str | None, cam_method: str | None = DEFAULT_CAM_METHOD) -> dict:
        """Analyse one image; returns the JSON result (``error`` set when the input is refused)."""
        out = guarded(lambda: analyze(image, cam_method=cam_method_from(cam_method), render_overlay=False),
                      texts.API_IMAGE_FAILED, "detect api")
        return out.value.to_dict() if out.ok else error_dict(out.error)

    def run_video(path: str | None, frames: float, top_k: float, cam_method: str | None):
        if not path:
            raise DetectorError("No video was given.")
        max_frames, k = video_request(frames, top_k)
        with gate:
            return analyze_video(det, path, max_frames=max_frames, top_k=k, cam_method=cam_method)

    def video_ui(path: str | None, frames: float, top_k: float):
        out = guarded(lambda: run_video(path, frames, top_k, DEFAULT_CAM_METHOD), texts.VIDEO_FAILED, "video")
        if not out.ok:
            gr.Warning(out.error)
            # an HTML panel: a Markdown sentence there would show its ** literally
            return panels.error_html(out.text("Could not analyse this video:")), None, None, None, error_dict(out.error)
        vr = out.value
        timeline = timeline_picture(vr, det.threshold) if vr.p_fake is not None else None
        worst = vr.worst_result.overlay if vr.worst_result is not None else None
        preview = video_preview(path, Path(tmp.name) / "previews", CACHE_SECONDS)
        missed = det.model_info().get("unseen_fakes_missed")
        return panels.video_headline_html(vr, det.threshold, missed), preview, timeline, worst, video_dict(vr)

    def video_api(video: str | None, max_frames: float = VIDEO_FRAMES, top_k: float = VIDEO_TOP_K) -> dict:
        """Analyse a video file; returns VideoResult.to_dict() (``error`` set when refused)."""
        out = guarded(lambda: video_dict(run_video(video, max_frames, top_k, None)), texts.API_VIDEO_FAILED,
                      "video api")
        return out.value if out.ok else error_dict(out.error)

    def guess(state, answer: str):
        state, text, overlay, score = game.guess(state, answer)
        done = state is not None and state.answered
        return state, text, overlay, score, gr.update(interactive=not done), gr.update(interactive=not done)

    def next_round(state):
        return (*game.next(state), gr.update(interactive=True), gr.update(interactive=True))

    def first_round():
        return next_round(None)

    # ---- layout ----

    with gr.Blocks(title="Deepfake face detector", analytics_enabled=False,
                   delete_cache=(CACHE_SECONDS, CACHE_SECONDS)) as demo:
        gr.Markdown("# Deepfake face detector\nCalibrated P(fake) per face, a heatmap of what the model looked "
                    "at, and what the file's own metadata says about its origin. A screening aid, not proof: "
                    f"see **About**. REST API: `POST {PREFIX}/detect` ([docs]({PREFIX}/docs)).")
        with gr.Tab("Detect"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = image_input(sources=["upload", "clipboard", "webcam"], label="Photo", elem_id="photo",
                                           height=IMAGE_HEIGHT)
                    cam = gr.Radio(cam_choices(), value=DEFAULT_CAM_METHOD, label="Heatmap method", info=SAME_MAPS)
                    opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Heatmap opacity", elem_id="opacity")
                    run_btn = gr.Button("Detect", variant="primary")
                    # Picking an example only fills the photo box; its change event runs the detector.
                    gr.Examples(examples=[[p] for p in examples], inputs=[image_in], cache_examples=False,
                                example_labels=EXAMPLE_LABELS)
                with gr.Column(scale=1):
                    headline = gr.HTML(elem_id="verdict")
                    provenance = gr.HTML(elem_id="provenance")  # the file's own evidence, beside the model's
                    # No label on the picture: a label drawn over its top-left corner would hide a face's caption.
                    overlay = gr.Image(show_label=False, type="numpy", interactive=False, elem_id="overlay",
                                       height=IMAGE_HEIGHT, buttons=["download", "fullscreen"])
                    message = gr.Markdown(elem_id="message")
            face_table = gr.HTML(elem_id="faces")
            with gr.Accordion("JSON result", open=False):
                result_json = gr.JSON(label="Result (heatmaps omitted; the /detect API includes them)")
            last = gr.State(None)  # (path, result) of the last analysis in this session
            detect_outputs = [headline, overlay, message, provenance, face_table, result_json, last]
            for trigger in (run_btn.click, image_in.change, cam.change):
                trigger(detect_ui, [image_in, cam, opacity], detect_outputs, api_visibility="private", **MODEL_EVENT)
            # .change, not .release: typing in the slider's number box changes it too (release needs a drag)
            opacity.change(reopacity, [last, opacity], [overlay, face_table], api_visibility="private",
                           trigger_mode="always_last")

        with gr.Tab("Video"):
            gr.Markdown("Frames are sampled evenly; each frame's score is its most suspicious face, and the "
                        "video's P(fake) is the mean of the top-k frame scores. Any codec OpenCV reads is "
                        "analysed; the preview is re-encoded so that your browser can play it.")
            with gr.Row():
                with gr.Column():
                    video_in = gr.File(label="Video file", file_types=sorted(VIDEO_SUFFIXES), elem_id="video")
                    n_frames = gr.Slider(4, MAX_VIDEO_FRAMES, value=VIDEO_FRAMES, step=1, label="Frames to sample")
                    top_k = gr.Slider(1, 10, value=VIDEO_TOP_K, step=1, label="Top-k frames averaged for the verdict")
                    video_btn = gr.Button("Analyse video", variant="primary")
                    preview = gr.Video(label="Preview (re-encoded for the browser, no sound)", interactive=False,
                                       elem_id="preview", height=300)
                with gr.Column():
                    video_msg = gr.HTML(elem_id="video_message")
                    # The title as text above the chart: an image's label chip would cover the chart's own title.
                    gr.Markdown("**P(fake) over time**")
                    timeline = gr.Image(show_label=False, type="numpy", interactive=False, elem_id="timeline")
                    worst = gr.Image(label="Most suspicious frame", type="numpy", interactive=False, height=360)
            with gr.Accordion("JSON result", open=False):
                video_json = gr.JSON(label="Video result")
            video_btn.click(video_ui, [video_in, n_frames, top_k], [video_msg, preview, timeline, worst, video_json],
                            api_visibility="private", **MODEL_EVENT)

        with gr.Tab("Can you beat the model?"):
            gr.Markdown(game.note)
            state = gr.State(None)
            with gr.Row():
                with gr.Column():
                    game_img = gr.Image(label="Real or fake?", type="numpy", interactive=False, elem_id="game",
                                        height=IMAGE_HEIGHT)
                    with gr.Row():
                        real_btn = gr.Button("Real", elem_id="guess_real")
                        fake_btn = gr.Button("Fake", elem_id="guess_fake")
                        next_btn = gr.Button("Next image", variant="primary", elem_id="next_image")
                with gr.Column():
                    score = gr.HTML(elem_id="score")
                    game_msg = gr.Markdown(elem_id="game_message")
                    game_overlay = gr.Image(label="What the model looked at", type="numpy", interactive=False,
                                            elem_id="game_overlay", height=IMAGE_HEIGHT - 100)
            guess_outputs = [state, game_msg, game_overlay, score, real_btn, fake_btn]
            real_btn.click(lambda s: guess(s, "real"), [state], guess_outputs, api_visibility="private", **MODEL_EVENT)
            fake_btn.click(lambda s: guess(s, "fake"), [state], guess_outputs, api_visibility="private", **MODEL_EVENT)
            round_outputs = [state, game_img, game_msg, game_overlay, score, real_btn, fake_btn]
            next_btn.click(next_round, [state], round_outputs, api_visibility="private")
            demo.load(first_round, None, round_outputs, api_visibility="private")

        with gr.Tab("About"):
            gr.Markdown(texts.about_markdown(det, CACHE_SECONDS))
            with gr.Accordion("The model card: training data, validation figures, robustness", open=False):
                gr.Markdown(texts.model_markdown(det))

        # ---- the public API: hidden components, so clients get plain JSON back ----
        with gr.Row(visible=False):
            api_image = image_input(label="image")
            api_cam = gr.Textbox(value=DEFAULT_CAM_METHOD, label=api_cam_label())
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
    demo._fdet_rest = rest_router(det, gate=gate)  # POST /api/v1/detect on the same server (launch_kwargs)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=QUEUE_SIZE)
    return demo


def launch_kwargs(limits: Limits | None = None, demo: gr.Blocks | None = None) -> dict[str, Any]:
    """Settings every launch shares (the tests use them too); ``demo`` brings its REST routes along."""
    limits = limits or Limits.from_env()
    # Uploads above the loader's own byte limit are refused by Gradio before they reach disk.
    # SSR needs a Node server and adds nothing here; no MCP server.  System fonts only (see FONTS).
    kwargs: dict[str, Any] = {"max_file_size": limits.max_upload_bytes, "ssr_mode": False, "mcp_server": False,
                              "theme": gr.themes.Default(font=FONTS, font_mono=MONO_FONTS), "css": CSS, "head": HEAD}
    rest = getattr(demo, "_fdet_rest", None)
    if rest is not None:  # a Gradio app is a FastAPI app: its routes are created with it
        kwargs["app_kwargs"] = {"routes": list(rest.routes)}
    return kwargs


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (checked before the model is loaded)."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def port_message(host: str, port: int) -> str:
    return (f"app.py: port {port} on {host} is already in use; choose another one with --port N, "
            "GRADIO_SERVER_PORT=N or `make run PORT=N`.")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Warnings and errors only: request-level logging could record what users upload.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if port_taken(args.host, args.port):  # say so at once, not after loading the model
        raise SystemExit(port_message(args.host, args.port))
    from detector import get_detector

    try:
        Limits.from_env()  # a bad FDET_* variable stops here, with its one-sentence message
        det = get_detector(args.model_dir)  # loads and warms up the model before the port opens
    except DetectorError as err:  # missing, tampered or truncated model: one sentence, no traceback
        raise SystemExit(f"app.py: {err}") from None
    demo = build_demo(det, game_dir=args.game_dir)
    try:
        # quiet: Gradio's own banner tells the operator to "set share=True in launch()"; this app's switch is --share
        demo.launch(server_name=args.host, server_port=args.port, share=args.share, quiet=True,
                    prevent_thread_lock=True, **launch_kwargs(demo=demo))
    except OSError as err:  # taken while the model loaded
        if "port" not in str(err).lower():
            raise
        raise SystemExit(port_message(args.host, args.port)) from None
    print(texts.launch_banner(args.host, args.port, getattr(demo, "share_url", None)), flush=True)
    demo.block_thread()


if __name__ == "__main__":
    with stop_on_signals():  # SIGTERM stops the server as Ctrl-C does; the temp folder goes either way
        main()
