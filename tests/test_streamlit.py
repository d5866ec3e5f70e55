"""The Streamlit page, driven headless through ``streamlit.testing.v1.AppTest`` (no browser, no server)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from detector.inference.results import score_text

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SCRIPT = str(PROJECT_ROOT / "streamlit_app.py")


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture(scope="module")
def page(detector):
    """One rendered page; ``detector`` is loaded first so the page's cached detector is the shared one."""
    at = AppTest.from_file(SCRIPT, default_timeout=60)
    at.run()
    return at


def test_page_renders_upload_controls_and_about_without_errors(page):
    assert not page.exception
    assert not page.error
    assert len(page.file_uploader) == 1
    # HiResCAM and LayerCAM draw the same maps as Grad-CAM and Grad-CAM++ for this model: not offered
    assert [o for o in page.radio[0].options] == ["Grad-CAM++", "Grad-CAM", "off"]
    assert page.slider[0].value == 0.5
    about = " ".join(m.value for m in page.sidebar.markdown)
    assert "not stored" in about and "Limits" in about
    assert "Upload a photo" in page.info[0].value


def _html(page) -> str:
    return "\n".join(h.proto.body for h in page.html)


def test_uploaded_photo_shows_headline_provenance_face_table_overlay_and_json(page, astronaut):
    page.file_uploader[0].upload("astronaut.jpg", _jpeg(astronaut), "image/jpeg")
    page.run()
    assert not page.exception and not page.error
    markup = _html(page)
    result = json.loads(page.json[0].value)
    assert result["error"] is None and result["label"] in ("fake", "real")
    assert f'data-verdict="{result["verdict"]}"' in markup  # the headline, in the verdict's own colour
    assert "File metadata (provenance)" in markup and "proves nothing" in markup  # beside the score
    assert result["provenance"]["verdict"] == "none"
    # The face table: numbered rows with a heatmap thumbnail each, in HTML that wraps instead of clipping.
    assert ">#1<" in markup and markup.count('alt="face ') == len(result["faces"]) and "overflow-x:auto" in markup
    assert len(page.image) == 1
    assert result["cam_method"] == "gradcam++" and result["faces"][0]["heatmap"] is not None
    assert f"P(fake) {score_text(result['p_fake'])}" in markup and "How to read P(fake)" in markup
    assert "likely REAL" not in markup and "fdet-scroll-hint" in markup  # the phone hint ships with the table
    caption = " ".join(c.value for c in page.caption)
    assert re.search(r"threshold \d\.\d\d,", caption)  # rounded, as everywhere else


def test_heatmap_off_and_opacity_change_rerender_without_new_errors(page):
    # Continues from the upload above: the result is reused, only the pictures change.
    before, table = page.image[0].value, _html(page)
    page.slider[0].set_value(0.0).run()
    assert not page.exception and not page.error and len(page.image) == 1
    assert page.image[0].value != before  # a different picture (no heatmap blended in)
    assert _html(page) != table  # the face thumbnails are re-blended too
    page.radio[0].set_value("off").run()
    assert not page.exception and not page.error
    result = json.loads(page.json[0].value)  # a new pass without heatmaps
    assert result["cam_method"] is None and "heatmap" not in result["faces"][0]
    assert "heatmap off" in page.image[0].captions[0]


def test_the_uploads_metadata_is_read_for_provenance(detector, astronaut):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "an astronaut\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 3")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "PNG", pnginfo=info)
    at = AppTest.from_file(SCRIPT, default_timeout=60)
    at.run()
    at.file_uploader[0].upload("gen.png", buf.getvalue(), "image/png").run()
    assert not at.exception and not at.error
    assert json.loads(at.json[0].value)["provenance"]["verdict"] == "ai-generated-declared"
    assert "Metadata says: made by generative AI" in _html(at)


def test_bad_upload_shows_error_message_not_exception(detector):
    at = AppTest.from_file(SCRIPT, default_timeout=60)
    at.run()
    at.file_uploader[0].upload("notes.jpg", b"just some text, not a photo\n", "image/jpeg").run()
    assert not at.exception
    assert len(at.error) == 1
    text = at.error[0].value
    assert "text file" in text and "Traceback" not in text
    assert not at.image and not at.dataframe


def test_bad_limit_variable_shows_a_message_not_an_exception(detector, monkeypatch):
    monkeypatch.setenv("FDET_MAX_UPLOAD_BYTES", "lots")
    at = AppTest.from_file(SCRIPT, default_timeout=60)
    at.run()
    assert not at.exception
    assert "FDET_MAX_UPLOAD_BYTES must be a whole number" in at.error[0].value
    assert not at.file_uploader


def test_streamlit_config_sends_no_usage_statistics_and_shows_no_tracebacks():
    import tomllib

    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none"
    assert config["server"]["address"] == "127.0.0.1"  # loopback by default, like the Gradio app
    assert config["client"]["toolbarMode"] == "viewer"  # no "Deploy" button
    assert config["server"]["fileWatcherType"] == "none"  # no watcher over the tree (.venv included)
