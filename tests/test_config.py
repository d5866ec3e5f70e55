"""detector.config owns every setting: one vocabulary per concept, the older names still accepted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from detector import config
from detector.config import ServerSettings, Settings
from detector.errors import ConfigError, ModelError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SETTING_VARS = ("FDET_FACE_FINDER", "FDET_FACE_DETECTOR", "FDET_ENGINE", "FDET_CAM_BACKEND", "FDET_MODEL_DIR",
                "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "FDET_SHARE", "FDET_GAME_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_when_nothing_is_set():
    s = Settings()
    assert (s.face_finder, s.engine, s.cam_backend, s.model_dir) == ("auto", "auto", "fused", None)
    assert ServerSettings.from_env() == ServerSettings("127.0.0.1", 7860, False, None)


def test_face_finder_variable_and_its_older_name(clean_env):
    clean_env.setenv("FDET_FACE_DETECTOR", "haar")
    assert Settings().face_finder == "haar"
    clean_env.setenv("FDET_FACE_FINDER", "mtcnn")  # the new name wins when both are set
    assert Settings().face_finder == "mtcnn"


def test_one_crop_margin_one_set_of_video_defaults_one_list_of_cam_methods():
    from detector.batch.scan import ScanOptions
    from detector.inference.bundle import ModelConfig
    from explain.gradcam import METHODS

    assert config.CropConfig().margin == ModelConfig().crop_margin == config.CROP_MARGIN == 1.3
    assert (ScanOptions().frames, ScanOptions().top_k) == (config.VIDEO_FRAMES, config.VIDEO_TOP_K) == (16, 3)
    assert config.CAM_METHODS is METHODS and config.DEFAULT_CAM_METHOD == "gradcam++"


def test_server_settings_read_the_environment_and_refuse_a_bad_port(clean_env):
    clean_env.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    clean_env.setenv("GRADIO_SERVER_PORT", "8080")
    clean_env.setenv("FDET_SHARE", "1")
    clean_env.setenv("FDET_GAME_DIR", "/data/game")
    assert ServerSettings.from_env() == ServerSettings("0.0.0.0", 8080, True, "/data/game")
    clean_env.setenv("GRADIO_SERVER_PORT", "http")
    with pytest.raises(ConfigError, match="GRADIO_SERVER_PORT must be a whole number"):
        ServerSettings.from_env()


def test_no_module_but_config_reads_the_environment_for_a_setting():
    """``os.environ`` / ``os.getenv`` reads live in detector/config.py only (writes for child processes aside)."""
    readers = []
    for path in [*PROJECT_ROOT.glob("detector/**/*.py"), *PROJECT_ROOT.glob("explain/*.py"),
                 PROJECT_ROOT / "app.py", PROJECT_ROOT / "streamlit_app.py"]:
        if path.name == "config.py" and path.parent.name == "detector":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                name = ast.unparse(target)
                if (name == "os.environ" and node.func.attr == "get") or ast.unparse(node.func) == "os.getenv":
                    readers.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                    and isinstance(node.ctx, ast.Load):
                readers.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert readers == []


# ------------------------------------------------------------------ the classifier's engine


@pytest.fixture(scope="module")
def bundle_without_lite(tmp_path_factory):
    import keras

    from detector.inference.bundle import ModelConfig
    from detector.training.export import save_bundle
    from detector.training.model import build_model

    keras.utils.set_random_seed(0)
    model, cam = build_model("small_cnn", 32, pretrained=False)
    out = tmp_path_factory.mktemp("no-lite") / "m"
    return save_bundle(model, ModelConfig(architecture="small_cnn", input_size=32, cam_layer=cam), out, lite=False)


@pytest.mark.parametrize("value, engine", [("tensorflow", "tensorflow"), ("tf", "tensorflow"), ("auto", "tflite"),
                                           ("tflite", "tflite")])
def test_engine_values_and_the_older_tf(detector, clean_env, value, engine):
    from detector.inference.pipeline import Detector

    clean_env.setenv("FDET_ENGINE", value)
    assert Detector(detector.model_dir, warmup=False).engine == engine


def test_engine_tflite_insists_on_the_tf_lite_copy(bundle_without_lite):
    from detector.inference.pipeline import Detector

    assert Detector(bundle_without_lite, warmup=False).engine == "tensorflow"  # auto falls back
    with pytest.raises(ModelError, match="export-lite"):
        Detector(bundle_without_lite, warmup=False, engine="tflite")
    with pytest.raises(ConfigError, match="tf-keras-vis"):
        Detector(bundle_without_lite, warmup=False, engine="tflite", cam_backend="tf-keras-vis")


def test_unknown_engine_lists_the_new_vocabulary(detector):
    from detector.inference.pipeline import Detector

    with pytest.raises(ConfigError, match="FDET_ENGINE must be one of auto, tflite, tensorflow; got 'onnx'"):
        Detector(detector.model_dir, warmup=False, engine="onnx")


def test_face_finder_flag_and_its_older_names(capsys):
    from detector.batch import scan
    from detector.evaluation import evaluate
    from detector.training import prepare

    parser = scan.build_parser()
    assert parser.parse_args(["x", "--face-finder", "haar"]).face_finder == "haar"
    assert parser.parse_args(["x", "--face-detector", "haar"]).face_finder == "haar"
    for main, older in ((prepare.main, "--detector"), (evaluate.main, "--face-detector")):
        with pytest.raises(SystemExit):
            main(["--help"])
        text = capsys.readouterr().out
        assert "--face-finder" in text and older in text
