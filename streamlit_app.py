"""Streamlit page: the Detect features of the Gradio app, as a thin shell over ``detector``/``explain``.

    streamlit run streamlit_app.py

Upload a photo; the page shows the verdict in one plain sentence, the heatmap overlay (opacity
slider, Grad-CAM++ / Grad-CAM / off), a table of P(fake) per face and the JSON result.  Every
decision comes from ``Detector.analyze``; this file only moves values between widgets and that
call.  Streamlit re-runs the script on every interaction, so the last analysis is kept in the
session and a move of the opacity slider only re-blends the heatmap (no new model pass).
"""

from __future__ import annotations

import hashlib
import logging

from detector.config import quiet_environment

quiet_environment()  # before TensorFlow is imported

import streamlit as st  # noqa: E402

from detector.config import Limits  # noqa: E402
from detector.errors import DetectorError  # noqa: E402
from detector.inference.images import load_image  # noqa: E402
from detector.training.data import IMAGE_SUFFIXES  # noqa: E402
from explain.overlay import BoxLabel, render  # noqa: E402

log = logging.getLogger("fdet.streamlit")

CAM_CHOICES = {"Grad-CAM++": "gradcam++", "Grad-CAM": "gradcam", "off": None}
UPLOAD_TYPES = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)
GENERIC_ERROR = "Something went wrong while analysing this image. Please try another file."


@st.cache_resource(show_spinner="Loading the model (once per server)...")
def load_detector():
    """One detector for every session of this server (the model is read-only, analyze is thread-safe)."""
    from detector.inference.pipeline import get_detector

    return get_detector()


def analyse(data: bytes, cam_method: str | None):
    """``(result, rgb)`` for uploaded bytes; raises :class:`DetectorError` for input we refuse.

    Kept per session (``st.session_state``), never in a cache shared between visitors.
    """
    key = (hashlib.sha256(data).hexdigest(), cam_method)
    last = st.session_state.get("last_analysis")
    if last is not None and last[0] == key:
        return last[1], last[2]
    st.session_state.pop("last_analysis", None)  # hold at most one picture, and none after a refusal
    det = load_detector()
    image = load_image(data, det.limits)
    res = det.analyze(image, cam_method=cam_method)  # also pastes the full-image heatmap we re-blend
    st.session_state["last_analysis"] = (key, res, image.rgb)
    return res, image.rgb


def overlay(rgb, res, opacity: float):
    """The picture users see: the heatmap blended at ``opacity`` and a box per face in its verdict colour."""
    labels = [BoxLabel(tuple(f.box), f"{f.label.upper()} {f.p_fake:.0%}", f.label == "fake")
              for f in res.faces] if res.face_found else []
    return render(rgb, res.heatmap if res.cam_method else None, labels, opacity)


def face_table(res) -> list[dict]:
    """One row per scored face (or one for the whole image when no face was found)."""
    return [{"face": str(i) if res.face_found else "whole image (no face)",
             "verdict": f.label, "P(fake)": round(float(f.p_fake), 3),
             "box (x, y, w, h)": ", ".join(str(int(v)) for v in f.box),
             "detector score": None if f.detector_score is None else round(float(f.detector_score), 3)}
            for i, f in enumerate(res.faces, start=1)]


def about(limits: Limits) -> None:
    st.markdown(f"""
**What it does.** Each face in the photo is found (MTCNN), cropped and scored by a small CNN
(MobileNetV2, 160 px) that gives a calibrated probability that the face is fake. The most suspicious
face decides the image. The heatmap (Grad-CAM / Grad-CAM++) shows which parts of each face crop drove
the score, on a coarse grid.

**Limits.** This is a screening aid, not proof. A "real" verdict does not certify a photo and a
"fake" verdict is a reason to look closer. The model can be confidently wrong on new generators and
face-swap tools, heavy compression, tiny or blurred faces, filters, drawings and screenshots. Without a
face it scores the centre of the picture, which is unreliable. Anyone who knows the model can fool it.
Uploads are limited to {limits.max_upload_bytes / 1e6:.0f} MB and {limits.max_pixels / 1e6:.0f} MP;
at most {limits.max_faces} faces per image are scored.

**Privacy.** Your upload is processed in memory and is not stored: no copy is written to disk, no
database, no logging of images, file names or results. The last result is kept in your browser
session's memory only, so moving a slider does not re-run the model; it is gone when you close the tab.
""")


def main() -> None:
    st.set_page_config(page_title="Deepfake face detector", layout="wide")
    st.title("Deepfake face detector")
    st.caption("Upload a photo with a face: the model estimates, per face, the probability that it is fake "
               "and shows where it looked. A screening aid, not proof (see About).")
    try:
        limits = Limits.from_env()
    except DetectorError as err:  # a bad FDET_* variable: say which, no traceback
        st.error(f"The detector is misconfigured: {err}")
        return

    with st.sidebar:
        st.header("Settings")
        cam_choice = st.radio("Heatmap method", list(CAM_CHOICES), index=0, horizontal=True,
                              help="Grad-CAM++ separates several faces better; 'off' is fastest.")
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05)
        with st.expander("About this detector, its limits and your privacy", expanded=False):
            about(limits)

    # The browser refuses files above the loader's byte limit (Streamlit counts MB as 2**20 bytes).
    max_mb = max(1, -(-limits.max_upload_bytes // 2**20))
    uploaded = st.file_uploader("Photo", type=UPLOAD_TYPES, max_upload_size=max_mb,
                                help="JPEG, PNG, WebP, GIF, BMP or TIFF. Processed in memory, not stored.")
    if uploaded is None:
        st.info("Upload a photo to analyse it.")
        return

    try:
        res, rgb = analyse(uploaded.getvalue(), CAM_CHOICES[cam_choice])
    except DetectorError as err:
        st.error(f"Could not analyse this file: {err}")
        return
    except Exception as err:  # noqa: BLE001 - never a traceback on the page
        log.error("analysis failed: %s", type(err).__name__)
        st.error(GENERIC_ERROR)
        return

    (st.warning if res.label == "fake" else st.success)(res.message)
    for note in res.notes:
        st.caption(note)
    left, right = st.columns([3, 2])
    with left:
        caption = "Heatmap overlay" if res.cam_method else "Faces (heatmap off)"
        st.image(overlay(rgb, res, opacity), caption=caption, width="stretch")
    with right:
        st.metric("P(fake) of the most suspicious face", f"{res.p_fake:.2f}",
                  help=f"The model calls a face fake at P(fake) >= {res.model['threshold']}.")
        st.dataframe(face_table(res), hide_index=True, width="stretch")
        info = res.model
        st.caption(f"Model {info['name']} {info['version']}, threshold {info['threshold']}, "
                   f"faces by {info['face_detector']}.")
    with st.expander("JSON result"):
        st.json(res.to_dict(include_heatmaps=res.cam_method is not None))


main()
