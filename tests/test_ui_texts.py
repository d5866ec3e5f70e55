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


def test_streamlit_says_where_the_result_is_kept_and_the_same_megabytes_as_its_uploader():
    limits = Limits()  # 20 * 2**20 bytes: Streamlit's uploader says "20MB", so must the page (it said 21)
    page = texts.streamlit_about(limits)
    assert f"limited to {texts.megabytes(limits)} MB" in page and texts.megabytes(limits) == 20
    assert "browser session" not in page and "server's memory" in page  # the truth: held on the server
    about = texts.about_markdown(SimpleNamespace(threshold=0.5), 600, limits)
    assert "uploads up to 20 MB" in about


def test_the_model_caption_rounds_the_threshold():
    caption = texts.model_caption({"name": "m", "version": "2", "threshold": 0.888242306921051,
                                   "face_detector": "mtcnn"})
    assert caption == "Model m 2, threshold 0.89, faces by mtcnn." and "0.8882" not in caption


def test_about_words_verdicts_by_what_the_model_did_and_names_both_heatmap_colours(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "loso.json").write_text('{"folds": {"diffusion": {"held_out_fakes_caught": 0.2}}}')
    about = texts.about_markdown(SimpleNamespace(threshold=0.888, model_dir=tmp_path), 600)
    assert "likely REAL" not in about and "NO SIGN FOUND" in about
    assert "below 0.81: NO SIGN FOUND · 0.81–0.94: UNCERTAIN · 0.94 and above: likely FAKE" in about
    assert "found no sign in 80 % of those fakes" in about  # 1 - 0.2, read from the model's files
    assert "yellow to red" in about and "blue" in about and "HiResCAM and LayerCAM" in about
    assert "found no sign in" not in texts.about_markdown(SimpleNamespace(threshold=0.5, model_dir=tmp_path / "x"), 600)


def test_the_server_banner_names_the_apps_own_share_flag():
    banner = texts.launch_banner("0.0.0.0", 7860, None)
    assert "http://127.0.0.1:7860" in banner and "--share" in banner and "share=True" not in banner
    assert "https://x.gradio.live" in texts.launch_banner("127.0.0.1", 7860, "https://x.gradio.live")
