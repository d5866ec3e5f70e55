"""What the apps say (detector.ui.texts): the About prose from the model card or model.json, results, failures."""

from __future__ import annotations

from types import SimpleNamespace

from detector.config import Limits
from detector.inference.results import DetectionResult, FaceResult
from detector.ui import texts


def test_about_tab_prefers_the_model_card_and_falls_back_to_model_json(tmp_path):
    info = {"name": "m", "version": "9.9", "architecture": "mobilenetv2", "input_size": 160,
            "threshold": 0.5, "temperature": 1.0, "face_detector": "mtcnn"}
    fake_det = SimpleNamespace(model_dir=tmp_path, model_info=lambda: info)
    (tmp_path / "model.json").write_text('{"trained_on": "some faces", "metrics": {"val": {"overall": {"auc": 0.91}}}}')
    cache_seconds = 600
    text = texts.about_markdown(fake_det, cache_seconds)
    assert "9.9" in text and "some faces" in text and "0.91" in text
    assert f"every {cache_seconds // 60} minutes" in text and "analytics" in text
    (tmp_path / "MODEL_CARD.md").write_text("---\nlicense: mit\n---\n# Model card\nTrained with care.")
    text = texts.about_markdown(fake_det, cache_seconds)
    assert "Trained with care." in text and "license: mit" not in text  # Hub metadata stripped


def test_about_fallback_names_the_engine_and_survives_a_broken_model_json(tmp_path):
    info = {"name": "m", "version": "1", "architecture": "a", "input_size": 160, "threshold": 0.5,
            "temperature": 1.0, "face_detector": "haar", "engine": "tflite"}
    (tmp_path / "model.json").write_text("{not json")
    text = texts.model_markdown(SimpleNamespace(model_dir=tmp_path, model_info=lambda: info))
    assert "| inference engine | tflite |" in text and "| face finder | haar |" in text
    assert "| trained on | unknown |" in text


def test_about_texts_quote_the_limits():
    limits = Limits(max_upload_bytes=5_000_000, max_pixels=12_000_000, max_faces=7)
    about = texts.about_markdown(SimpleNamespace(model_dir="/nonexistent", model_info=lambda: {
        "name": "m", "version": "1", "architecture": "a", "input_size": 1, "threshold": 0.5, "temperature": 1,
        "face_detector": "mtcnn"}), 600, limits)
    assert "uploads up to 5 MB and 12 megapixels" in about and "at most 7 faces per image" in about
    page = texts.streamlit_about(limits)
    assert "limited to 5 MB and 12 MP" in page and "at most 7 faces" in page and "not stored" in page


def test_result_markdown_is_the_message_in_bold_and_one_bullet_per_note():
    res = DetectionResult(faces=[FaceResult([0, 0, 1, 1], 0.2, "real")], label="real", p_fake=0.2, face_found=True,
                          message="1 face found.", notes=["first frame", "rotated"], image_size=[1, 1], model={},
                          cam_method=None, timings_ms={})
    assert texts.result_markdown(res) == "**1 face found.**\n- first frame\n- rotated"
