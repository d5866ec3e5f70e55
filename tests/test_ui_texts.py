"""What the apps say (detector.ui.texts): the About prose from the model card or model.json, results, failures."""

from __future__ import annotations

from types import SimpleNamespace

from detector.config import Limits
from detector.inference.results import DetectionResult, FaceResult
from detector.ui import texts


def test_about_tab_puts_what_it_can_and_cannot_do_first_and_the_card_apart(tmp_path):
    info = {"name": "m", "version": "9.9", "architecture": "mobilenetv2", "input_size": 160,
            "threshold": 0.5, "temperature": 1.0, "face_detector": "mtcnn"}
    fake_det = SimpleNamespace(model_dir=tmp_path, model_info=lambda: info, threshold=0.5)
    (tmp_path / "MODEL_CARD.md").write_text("---\nlicense: mit\n---\n# Model card\n| AUC | 0.91 |")
    cache_seconds = 600
    about = texts.about_markdown(fake_det, cache_seconds)
    assert about.startswith("## What this detector can and cannot do")
    assert "AUC" not in about and "Model card" not in about  # the card is for the accordion
    for words in ("UNCERTAIN", "NO FACE", "No metadata proves nothing", "can be forged", "strong evidence"):
        assert words in about
    assert f"every {cache_seconds // 60} minutes" in about and "analytics" in about
    assert about.index("can and cannot do") < about.index("File metadata") < about.index("Privacy")


def test_the_model_card_reads_the_card_and_falls_back_to_model_json(tmp_path):
    info = {"name": "m", "version": "9.9", "architecture": "mobilenetv2", "input_size": 160,
            "threshold": 0.5, "temperature": 1.0, "face_detector": "mtcnn"}
    fake_det = SimpleNamespace(model_dir=tmp_path, model_info=lambda: info)
    (tmp_path / "model.json").write_text('{"trained_on": "some faces", "metrics": {"val": {"overall": {"auc": 0.91}}}}')
    text = texts.model_markdown(fake_det)
    assert "9.9" in text and "some faces" in text and "0.91" in text
    (tmp_path / "MODEL_CARD.md").write_text("---\nlicense: mit\n---\n# Model card\nTrained with care.")
    text = texts.model_markdown(fake_det)
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
    about = texts.about_markdown(SimpleNamespace(threshold=0.5), 600, limits)
    assert "uploads up to 5 MB and 12 megapixels" in about and "at most 7 faces per image" in about
    page = texts.streamlit_about(limits)
    assert "limited to 5 MB and 12 MP" in page and "at most 7 faces" in page and "not stored" in page


def test_result_markdown_adds_only_what_the_headline_does_not_say():
    res = DetectionResult(faces=[FaceResult([0, 0, 1, 1], 0.2, "real")], label="real", p_fake=0.2, face_found=True,
                          message="1 face found.", notes=["first frame", "rotated"], image_size=[1, 1], model={},
                          cam_method=None, timings_ms={})
    assert texts.result_markdown(res) == "- first frame\n- rotated"
    res.notes, res.faces_skipped = [], 3
    assert texts.result_markdown(res) == "- 3 more small faces were not scored (the limit is 1 per image)."
    res.faces_skipped = 0
    assert texts.result_markdown(res) == ""
