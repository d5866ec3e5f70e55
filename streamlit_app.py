"""Streamlit page: the Detect features of the Gradio app, as a thin shell over ``detector``/``detector.ui``.

    streamlit run streamlit_app.py

Upload a photo; the page shows the verdict (fake, real, uncertain or no face) in its colour, the
heatmap overlay (opacity slider, Grad-CAM++ / Grad-CAM / off) with its legend, the file's provenance
evidence, a table of the faces with their heatmap thumbnails, and the JSON result.  Every
decision comes from ``Detector.analyze``; this file only moves values between widgets and that
call.  Streamlit re-runs the script on every interaction, so the last analysis is kept in the
session and a move of the opacity slider only re-blends the heatmap (no new model pass).
"""

from __future__ import annotations

import hashlib

from detector.config import quiet_environment

quiet_environment()  # before TensorFlow is imported

import streamlit as st  # noqa: E402

from detector import DetectorError, load_image  # noqa: E402
from detector.config import Limits  # noqa: E402
from detector.training.data import IMAGE_SUFFIXES  # noqa: E402
from detector.ui import panels, texts  # noqa: E402
from detector.ui.choices import SAME_MAPS, cam_choices, cam_method_from  # noqa: E402
from detector.ui.guard import guarded  # noqa: E402
from detector.ui.pictures import reblend, rethumb  # noqa: E402

CAM_CHOICES = {label: cam_method_from(value) for label, value in cam_choices()}  # label -> cam_method
UPLOAD_TYPES = sorted(s.lstrip(".") for s in IMAGE_SUFFIXES)


@st.cache_resource(show_spinner="Loading the model (once per server)...")
def load_detector():
    """One detector for every session of this server (the model is read-only, analyze is thread-safe)."""
    from detector import get_detector

    return get_detector()


def analyse(data: bytes, name: str, cam_method: str | None):
    """``(result, rgb)`` for uploaded bytes; raises :class:`DetectorError` for input we refuse.

    The loader reads the pixels and the file's provenance metadata from the same bytes.  Kept per
    session (``st.session_state``), never in a cache shared between visitors.
    """
    key = (hashlib.sha256(data).hexdigest(), cam_method)
    last = st.session_state.get("last_analysis")
    if last is not None and last[0] == key:
        return last[1], last[2]
    st.session_state.pop("last_analysis", None)  # hold at most one picture, and none after a refusal
    det = load_detector()
    image = load_image(data, det.limits, filename=name)
    res = det.analyze(image, cam_method=cam_method)  # also pastes the full-image heatmap we re-blend
    st.session_state["last_analysis"] = (key, res, image.rgb)
    return res, image.rgb


def main() -> None:
    st.set_page_config(page_title="Deepfake face detector", layout="wide")
    st.title("Deepfake face detector")
    st.caption("Upload a photo with a face: the model estimates, per face, the probability that it is fake "
               "and shows where it looked; the file's own metadata is read for provenance evidence. "
               "A screening aid, not proof (see About).")
    try:
        limits = Limits.from_env()
    except DetectorError as err:  # a bad FDET_* variable: say which, no traceback
        st.error(f"The detector is misconfigured: {err}")
        return

    with st.sidebar:
        st.header("Settings")
        cam_choice = st.radio("Heatmap method", list(CAM_CHOICES), index=0, horizontal=True,
                              help=f"Grad-CAM++ separates several faces better; 'off' is fastest. {SAME_MAPS}")
        opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05)
        with st.expander("About this detector, its limits and your privacy", expanded=False):
            st.markdown(texts.streamlit_about(limits))

    # The browser refuses files above the loader's byte limit (Streamlit counts MB as 2**20 bytes, as the texts do).
    max_mb = texts.megabytes(limits)
    uploaded = st.file_uploader("Photo", type=UPLOAD_TYPES, max_upload_size=max_mb,
                                help="JPEG, PNG, WebP, GIF, BMP or TIFF. Processed in memory, not stored.")
    if uploaded is None:
        st.info("Upload a photo to analyse it.")
        return

    out = guarded(lambda: analyse(uploaded.getvalue(), uploaded.name, CAM_CHOICES[cam_choice]),
                  texts.IMAGE_FAILED, "analysis")
    if not out.ok:  # never a traceback on the page
        st.error(out.text("Could not analyse this file:"))
        return
    res, rgb = out.value

    left, right = st.columns([3, 2])
    with left:
        caption = "Heatmap overlay" if res.cam_method else "Faces (heatmap off)"
        st.image(reblend(rgb, res, opacity), caption=caption, width="stretch")
    with right:
        st.html(panels.headline_html(res))
        st.markdown(texts.result_markdown(res))
        st.html(panels.provenance_html(res.provenance))
        st.caption(texts.model_caption(res.model))
    st.subheader("Faces")
    st.html(panels.face_table_html(res, rethumb(rgb, res, opacity)))
    with st.expander("JSON result"):
        st.json(res.to_dict(include_heatmaps=res.cam_method is not None))


main()
