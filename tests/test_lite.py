"""The TF Lite copy of the classifier: written with the bundle, used only while valid, same answers.

TF Lite is only a faster way to run the same network, so every test here compares it with the
TensorFlow path: probabilities, both heatmaps, whole-photo answers; and a stale or tampered copy
must be ignored (with a warning), never trusted.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from detector.errors import ConfigError
from detector.inference.bundle import LITE_FILE, ModelConfig, read_config, read_lite
from detector.inference.forward import Classifier, keras_forward, lite_forward
from detector.inference.forward import forward_function as forward_graph
from detector.inference.lite import LiteRunner, convert
from detector.inference.pipeline import Detector
from detector.training.export import main as export_main
from detector.training.export import save_bundle
from detector.training.model import build_model
from explain.gradcam import CamExplainer, MapLayout

SIZE = 64


def layout(cam: str) -> MapLayout:
    return MapLayout(layers=(cam,), semantic=cam, semantic_last=cam)


@pytest.fixture(scope="module")
def small_model():
    import keras

    keras.utils.set_random_seed(3)
    model, cam = build_model("small_cnn", SIZE, pretrained=False)
    # Give the logit some spread so probabilities and heatmaps are not all alike.
    kernel, bias = model.get_layer("logit").get_weights()
    model.get_layer("logit").set_weights([kernel * 20, bias])
    return model, cam


@pytest.fixture()
def bundle(small_model, tmp_path):
    model, cam = small_model
    cfg = ModelConfig(name="tiny", architecture="small_cnn", input_size=SIZE, cam_layer=cam, threshold=0.5)
    return save_bundle(model, cfg, tmp_path / "tiny")


def crops(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)


def test_saving_writes_the_lite_copy_with_its_hashes(bundle):
    cfg = read_config(bundle)
    assert (bundle / LITE_FILE).is_file()
    assert len(cfg.lite_sha256) == 64 and cfg.lite_source_sha256 == cfg.sha256
    assert read_lite(bundle, cfg) == (bundle / LITE_FILE).read_bytes()


def test_lite_forward_equals_the_keras_model_for_any_batch_size(small_model):
    model, cam = small_model
    fn = forward_graph(model, [cam])
    run = LiteRunner(convert(fn))
    for n in (1, 5, 2, 5):  # re-sizing back and forth
        x = crops(n, seed=n)
        got, want = run(x), [np.asarray(t) for t in fn(x)]  # logit, probability, features, gradient
        assert [g.shape for g in got] == [w.shape for w in want]
        assert np.allclose(got[1], want[1], atol=1e-5)
        for g, w in zip(got, want, strict=True):
            assert np.allclose(g, w, atol=1e-3 * max(1.0, float(np.abs(w).max())))


def test_runner_refuses_the_wrong_number_of_inputs(small_model):
    model, cam = small_model
    run = LiteRunner(convert(forward_graph(model, [cam])))
    with pytest.raises(ValueError, match="inputs"):
        run(crops(1), crops(1))
    with pytest.raises(ValueError, match="inputs"):
        LiteRunner(convert(forward_graph(model, [cam])), inputs=["image", "patches"])


def test_explainer_with_lite_forward_gives_the_tensorflow_answers(small_model):
    model, cam = small_model
    tf_path = CamExplainer(keras_forward(model, [cam]), layout(cam))
    lite_path = CamExplainer(lite_forward(LiteRunner(convert(forward_graph(model, [cam])))), layout(cam))
    x = crops(6, seed=7)
    a, b = tf_path.explain([x], threshold=0.5), lite_path.explain([x], threshold=0.5)
    assert np.allclose(a.p_fake, b.p_fake, atol=1e-5)
    assert len(set(np.round(a.p_fake, 3))) > 1  # the comparison is not between constants
    for method in a.cams:
        assert a.cams[method].shape == b.cams[method].shape
        assert np.allclose(a.cams[method], b.cams[method], atol=1e-3)
    tf_classifier = Classifier(tf_path.forward, layout(cam), ["image"])
    lite_classifier = Classifier(lite_path.forward, layout(cam), ["image"])
    assert np.allclose(tf_classifier.predict({"image": x}, batch=4), lite_classifier.predict({"image": x}, batch=4),
                       atol=1e-5)
    assert lite_classifier.predict({"image": x[:0]}).shape == (0,)


def test_detector_runs_lite_by_default_and_tensorflow_on_request(bundle, astronaut):
    lite = Detector(bundle, engine="auto")
    tf_ = Detector(bundle, engine="tf")
    assert (lite.engine, tf_.engine) == ("tflite", "tensorflow")
    assert lite.model_info()["engine"] == "tflite"
    a, b = lite.analyze(astronaut), tf_.analyze(astronaut)
    assert len(a.faces) == len(b.faces) == 1
    assert abs(a.faces[0].p_fake - b.faces[0].p_fake) < 1e-4
    assert a.faces[0].label == b.faces[0].label


def test_the_keras_model_is_loaded_only_when_something_needs_it(bundle, astronaut):
    det = Detector(bundle)
    det.analyze(astronaut)
    assert det._model is None
    assert det.model.get_layer("logit") is not None  # loaded (and hash-checked) on demand
    with pytest.raises(ValueError, match="Keras model"):
        CamExplainer(det.classifier.forward, det.layout, backend="tf-keras-vis")


def test_tampered_weights_stop_the_detector_even_when_tf_lite_would_do_the_work(bundle):
    from detector.errors import ModelError

    with open(bundle / "model.keras", "ab") as f:
        f.write(b"extra")
    with pytest.raises(ModelError, match="does not match its model card"):
        Detector(bundle, warmup=False)


def test_a_lite_copy_of_another_model_is_ignored(bundle, caplog):
    card = json.loads((bundle / "model.json").read_text())
    card["lite_source_sha256"] = "0" * 64
    (bundle / "model.json").write_text(json.dumps(card))
    with caplog.at_level(logging.WARNING):
        assert read_lite(bundle, read_config(bundle)) is None
        assert Detector(bundle, warmup=False).engine == "tensorflow"
    assert "converted from another model.keras" in caplog.text


def test_a_tampered_lite_copy_is_ignored(bundle, caplog):
    data = bytearray((bundle / LITE_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / LITE_FILE).write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert read_lite(bundle, read_config(bundle)) is None
    assert "does not match its model card" in caplog.text


def test_a_bundle_without_lite_copy_runs_in_tensorflow(small_model, tmp_path):
    model, cam = small_model
    out = save_bundle(model, ModelConfig(architecture="small_cnn", input_size=SIZE, cam_layer=cam), tmp_path / "m",
                      lite=False)
    assert not (out / LITE_FILE).exists() and read_config(out).lite_sha256 == ""
    assert Detector(out, warmup=False).engine == "tensorflow"


def test_export_lite_command_adds_the_copy_to_an_older_folder(small_model, tmp_path, capsys):
    model, cam = small_model
    out = save_bundle(model, ModelConfig(architecture="small_cnn", input_size=SIZE, cam_layer=cam), tmp_path / "m",
                      lite=False)
    assert export_main([str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert read_lite(out, read_config(out)) is not None
    assert Detector(out, warmup=False).engine == "tflite"


def test_export_lite_command_explains_a_missing_folder(tmp_path, capsys):
    assert export_main([str(tmp_path / "nothing")]) == 2
    assert "error:" in capsys.readouterr().out


@pytest.mark.parametrize("setting", ["engine", "cam_backend", "face_finder"])
def test_an_unknown_setting_is_a_one_sentence_config_error(bundle, setting):
    with pytest.raises(ConfigError, match="must be one of"):
        Detector(bundle, warmup=False, **{setting: "magic"})


def test_the_shipped_model_has_a_valid_lite_copy(detector):
    assert detector.engine == "tflite"


def test_export_lite_command_needs_a_folder_or_mtcnn(capsys):
    with pytest.raises(SystemExit) as exc:
        export_main([])
    assert exc.value.code == 2 and "give a model folder" in capsys.readouterr().err


def test_an_intact_lite_copy_of_another_forward_pass_is_refused(small_model, bundle):
    """E.g. written by an older version: hashes match, outputs do not; the detector and evaluate refuse it."""
    import tensorflow as tf

    from detector.errors import ModelError
    from detector.inference.bundle import load_lite, sha256_file
    from detector.training.export import write_config

    model, _ = small_model
    fn = tf.function(lambda x: (model(x), model(x), model(x)), autograph=False,
                     input_signature=[tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32)])
    (bundle / LITE_FILE).write_bytes(convert(fn))
    cfg = read_config(bundle)
    cfg.lite_sha256 = sha256_file(bundle / LITE_FILE)
    write_config(cfg, bundle)
    with pytest.raises(ModelError, match="export-lite"):
        load_lite(bundle, read_config(bundle))
    with pytest.raises(ModelError, match="export-lite"):
        Detector(bundle, warmup=False)
