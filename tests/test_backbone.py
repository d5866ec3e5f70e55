"""The Keras MobileNetV2 reproduces torchvision's ImageNet network from the offline weights file."""

from __future__ import annotations

import io
import pickle

import cv2
import keras
import numpy as np
import pytest

from detector.training import backbone as bb


@pytest.fixture(scope="module")
def imagenet_classifier():
    inp = keras.Input((224, 224, 3))
    x = keras.layers.Normalization(mean=bb.IMAGENET_MEAN, variance=[s * s for s in bb.IMAGENET_STD])(inp)
    g = keras.layers.GlobalAveragePooling2D()(bb.mobilenet_v2_features(x))
    model = keras.Model(inp, keras.layers.Dense(1000, name="cls")(g))
    bb.load_torch_imagenet_weights(model)
    state = bb.read_legacy_torch_state_dict(bb.imagenet_weights_path())
    model.get_layer("cls").set_weights([state["classifier.1.weight"].T, state["classifier.1.bias"]])
    return model


def test_state_dict_has_every_torchvision_tensor():
    state = bb.read_legacy_torch_state_dict(bb.imagenet_weights_path())
    assert state["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state["classifier.1.weight"].shape == (1000, 1280)
    assert all(v.dtype in (np.float32, np.int64) for v in state.values())


@pytest.mark.parametrize("photo, classes", [
    ("coffee", {504, 967, 968}),  # coffee mug, espresso, cup
    ("chelsea", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
])
def test_converted_network_recognises_imagenet_photos(imagenet_classifier, photo, classes):
    import skimage.data

    img = cv2.resize(getattr(skimage.data, photo)(), (224, 224), interpolation=cv2.INTER_AREA)
    logits = imagenet_classifier.predict(img[None].astype("float32"), verbose=0)[0]
    assert int(np.argmax(logits)) in classes


def test_restricted_unpickler_refuses_arbitrary_globals():
    payload = pickle.dumps(print)  # a global the state_dict reader must never resolve
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        bb._RestrictedUnpickler(io.BytesIO(payload), {}).load()


def test_weights_file_with_wrong_magic_is_rejected(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(pickle.dumps(12345) * 5)
    with pytest.raises(ValueError, match="magic"):
        bb.read_legacy_torch_state_dict(bad)
