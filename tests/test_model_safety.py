"""A model folder from the internet must not run code or load half-broken: every failure is a ModelError.

Each test damages a private copy of ``assets/model`` (never the shipped one) in one way.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import keras
import pytest

from detector.config import DEFAULT_MODEL_DIR
from detector.errors import ModelError
from detector.inference.bundle import CONFIG_FILE, MODEL_FILE, ModelConfig, check_model, load_bundle, sha256_file

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL_DIR / MODEL_FILE).is_file(), reason="assets/model is missing")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One copy of the shipped model per module (it may be replaced by a retrained one meanwhile)."""
    dst = tmp_path_factory.mktemp("model") / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, dst)
    return dst


@pytest.fixture
def bundle(pristine, tmp_path) -> Path:
    """A private copy of the model folder for one test to damage."""
    dst = tmp_path / "model"
    shutil.copytree(pristine, dst)
    return dst


def read_card(folder: Path) -> dict:
    return json.loads((folder / CONFIG_FILE).read_text())


def write_card(folder: Path, card: dict) -> None:
    (folder / CONFIG_FILE).write_text(json.dumps(card))


def reseal(folder: Path) -> None:
    """Put the model file's true SHA-256 in its card: the damage then has to be caught by loading."""
    card = read_card(folder)
    card["sha256"] = sha256_file(folder / MODEL_FILE)
    write_card(folder, card)


def test_an_intact_copy_loads(bundle):
    model, config = load_bundle(bundle)
    assert model.output_shape[1:] == (1,)
    assert config.sha256 == sha256_file(bundle / MODEL_FILE)


def test_one_flipped_byte_is_a_hash_mismatch(bundle):
    path = bundle / MODEL_FILE
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match its model card"):
        load_bundle(bundle)


def test_truncated_file_is_refused_by_the_hash(bundle):
    path = bundle / MODEL_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="modified or truncated"):
        load_bundle(bundle)


def test_truncated_file_with_a_matching_card_still_fails_as_model_error(bundle):
    path = bundle / MODEL_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    reseal(bundle)
    with pytest.raises(ModelError, match="could not be loaded"):
        load_bundle(bundle)


def test_card_without_sha256_is_refused(bundle):
    card = read_card(bundle)
    del card["sha256"]
    write_card(bundle, card)
    with pytest.raises(ModelError, match="no sha256"):
        load_bundle(bundle)


@pytest.mark.parametrize("text", ["{not json", "[1, 2, 3]", "null", '"a string"'])
def test_card_that_is_not_a_json_object_is_a_model_error(bundle, text):
    (bundle / CONFIG_FILE).write_text(text)
    with pytest.raises(ModelError, match="model card"):
        load_bundle(bundle)


def test_card_that_is_not_text_is_a_model_error(bundle):
    (bundle / CONFIG_FILE).write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ModelError, match="model card"):
        load_bundle(bundle)


def test_missing_folder_and_missing_files_are_model_errors(tmp_path, bundle):
    with pytest.raises(ModelError, match="No model card"):
        load_bundle(tmp_path / "does-not-exist")
    (bundle / MODEL_FILE).unlink()
    with pytest.raises(ModelError, match="No model file"):
        load_bundle(bundle)


# ------------------------------------------------------------------ models that would run code


def _save_tiny(folder: Path, model: keras.Model, input_size: int = 8) -> Path:
    """Save ``model`` as a bundle whose card carries its correct SHA-256 (a well-made but hostile file)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / MODEL_FILE)
    card = ModelConfig(input_size=input_size, cam_layer="conv", sha256=sha256_file(folder / MODEL_FILE))
    write_card(folder, card.__dict__)
    return folder


def _tiny(middle) -> keras.Model:
    inputs = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(2, 3, name="conv")(middle(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    return keras.Model(inputs, keras.layers.Activation("sigmoid")(logit))


def test_control_tiny_model_without_lambda_loads(tmp_path):
    model, _ = load_bundle(_save_tiny(tmp_path / "ok", _tiny(lambda t: t)))
    assert model.output_shape == (None, 1)


def test_lambda_with_python_code_is_refused_by_safe_mode(tmp_path):
    folder = _save_tiny(tmp_path / "lam", _tiny(keras.layers.Lambda(lambda t: t * 2.0, name="evil")))
    with pytest.raises(ModelError, match="Lambda"):
        load_bundle(folder)


def test_lambda_with_a_named_function_is_refused_by_the_layer_check(tmp_path):
    # Keras' safe_mode lets a Lambda wrapping a known function through; our own check must not.
    folder = _save_tiny(tmp_path / "lam", _tiny(keras.layers.Lambda(keras.activations.relu, name="named")))
    with pytest.raises(ModelError, match="Lambda layer"):
        load_bundle(folder)


def test_lambda_hidden_in_a_nested_model_is_refused(tmp_path):
    inner = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Lambda(keras.activations.relu, name="hidden")],
                             name="inner")
    folder = _save_tiny(tmp_path / "nested", _tiny(inner))
    with pytest.raises(ModelError, match="Lambda layer"):
        load_bundle(folder)


def test_check_model_refuses_an_in_memory_lambda():
    with pytest.raises(ModelError, match="Lambda layer"):
        check_model(_tiny(keras.layers.Lambda(keras.activations.relu)), ModelConfig(input_size=8, cam_layer="conv"))


def test_config_naming_an_arbitrary_python_function_is_not_called(tmp_path):
    """A hand-edited config.json that asks Keras to import and call ``os.makedirs``."""
    folder = _save_tiny(tmp_path / "evil", _tiny(lambda t: t))
    path = folder / MODEL_FILE
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    marker = tmp_path / "PWNED"
    files["config.json"] = json.dumps({"module": "os", "class_name": "makedirs", "registered_name": "makedirs",
                                       "config": {"name": str(marker)}}).encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    reseal(folder)
    with pytest.raises(ModelError):
        load_bundle(folder)
    assert not marker.exists()
