"""White-box attacks: they work, they keep their budget, they follow the app's exact decision path,
and adversarial training makes a tiny model resist them."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from detector.evaluation import attacks, metrics
from detector.inference.views import ViewSpec, face_views
from detector.training import train

S = 32


def data(n: int, rng: np.random.Generator):
    """Noise pictures; fakes are 6 levels brighter and carry a faint +-3 checkerboard (a fragile cue)."""
    x = rng.normal(120, 20, (n, S, S, 3)).clip(0, 255).astype("float32")
    y = (np.arange(n) % 2).astype("float32")
    board = ((np.indices((S, S)).sum(0) % 2) * 2 - 1)[..., None] * 3.0
    x[y == 1] = np.clip(x[y == 1] + 6 + board, 0, 255)
    return x, y


def tiny() -> keras.Model:
    inp = keras.Input((S, S, 3), name="image")
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Activation("sigmoid")(keras.layers.Dense(1, name="logit")(h)))


def fit(adv_eps: float, steps: int = 300):
    keras.utils.set_random_seed(0)
    model = tiny()
    cfg = train.TrainConfig(learning_rate=3e-3, head_learning_rate=3e-3, adv_eps=adv_eps, adv_steps=1, adv_share=1.0)
    trainer = train.Trainer(model, cfg, steps)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x, y = data(32, rng)
        trainer.step([x], y[:, None])
    return lambda xs: trainer.logit_model(xs, training=False)


@pytest.fixture(scope="module")
def clean_and_robust():
    return fit(0.0), fit(2.0)


def attacked_auc(logit_fn, x, y, eps, steps):
    adv = attacks.linf_attack(logit_fn, [tf.constant(x)], tf.constant(y[:, None]), eps, steps=steps,
                              random_start=steps > 1)[0].numpy()
    return metrics.auc(y, np.asarray(logit_fn([np.rint(adv)])).ravel()), adv


@pytest.mark.slow
def test_fgsm_at_a_large_budget_breaks_the_clean_model(clean_and_robust):
    clean, _ = clean_and_robust
    x, y = data(200, np.random.default_rng(5))
    assert metrics.auc(y, np.asarray(clean([x])).ravel()) > 0.99
    auc, adv = attacked_auc(clean, x, y, 16.0, steps=1)
    assert auc < 0.2
    assert np.abs(adv - x).max() <= 16.0 + 1e-3 and adv.min() >= 0 and adv.max() <= 255


@pytest.mark.slow
def test_adversarial_training_raises_the_attacked_auc(clean_and_robust):
    clean, robust = clean_and_robust
    x, y = data(200, np.random.default_rng(6))
    clean_auc, _ = attacked_auc(clean, x, y, 2.0, steps=10)
    robust_auc, _ = attacked_auc(robust, x, y, 2.0, steps=10)
    assert metrics.auc(y, np.asarray(robust([x])).ravel()) > 0.99  # still right on clean pictures
    assert robust_auc > clean_auc + 0.15 and robust_auc > 0.9


def test_the_differentiable_path_equals_the_apps_views():
    spec = ViewSpec(input_size=160, patch=64, n_patches=4, native_max=256)
    rng = np.random.default_rng(0)
    sides = [200, 120, 256, 64]
    canvas = np.zeros((4, 256, 256, 3), np.uint8)
    for b, s in enumerate(sides):
        canvas[b, :s, :s] = rng.integers(0, 255, (s, s, 3))
    image, patches = (t.numpy() for t in attacks.DecisionPath(sides, spec, ["image", "patches"], 256)(
        tf.constant(canvas, tf.float32)))
    for b, s in enumerate(sides):
        v = face_views([canvas[b, :s, :s]], spec)
        assert np.abs(image[b] - v.image[0]).max() < 1.0  # OpenCV rounds its uint8 output; the path does not
        assert np.array_equal(patches[b], v.patches[0])


def test_attacked_crops_keep_the_budget_the_pixel_range_and_the_untouched_rows():
    spec = ViewSpec(input_size=32, patch=16, n_patches=4, native_max=48)
    keras.utils.set_random_seed(1)
    from detector.training.model import build_model

    model, _ = build_model("dual_small", 32, pretrained=False, patch=16, n_patches=4)
    head = keras.Model(model.inputs, model.get_layer("logit").output)
    rng = np.random.default_rng(2)
    sides = [48, 40, 32]
    canvas = np.zeros((3, 48, 48, 3), np.uint8)
    for b, s in enumerate(sides):
        canvas[b, :s, :s] = rng.integers(0, 256, (s, s, 3))
    y = np.array([1, 0, 1], np.float32)
    for eps, steps in ((1.5, 0), (3.0, 5)):
        adv = attacks.attack_crops(lambda xs: head(xs, training=False), canvas, sides, y, spec, ["image", "patches"],
                                   eps, steps, only_fakes=True)
        d = adv.astype(int) - canvas
        assert adv.dtype == np.uint8 and np.abs(d).max() <= np.floor(eps)
        assert np.array_equal(adv[1], canvas[1])  # the real face is left alone
        assert np.abs(d[0]).max() > 0
        for b, s in enumerate(sides):
            assert not d[b, s:, :].any() and not d[b, :, s:].any()  # nothing outside the crop


def test_adversarial_training_batches_perturb_both_classes_in_the_same_share():
    # Training batches are ordered (reals first).  Attacking "the first half" once perturbed only the
    # reals, which teaches "noise means real"; the rows must be drawn per class.
    tf.random.set_global_generator(tf.random.Generator.from_seed(3))
    y = np.array([0] * 16 + [1] * 8 + [1] * 8, np.float32)[:, None]  # the order paper-SBI batches have
    x = np.random.default_rng(0).uniform(20, 230, (32, 8, 8, 3)).astype(np.float32)

    def logit_fn(xs):
        return tf.reduce_mean(xs[0], axis=[1, 2, 3])[:, None] / 50.0

    seen = set()
    for _ in range(3):
        adv = attacks.adversarial_batch(logit_fn, [tf.constant(x)], tf.constant(y), 2.0, 1, 0.5)[0].numpy()
        changed = np.abs(adv - x).reshape(32, -1).max(axis=1) > 0
        assert changed[:16].sum() == 8 and changed[16:].sum() == 8  # half of each class, not the first half
        assert np.abs(adv - x).max() <= 2.0 + 1e-4 and adv.min() >= 0 and adv.max() <= 255
        seen.add(tuple(np.flatnonzero(changed)))
    assert len(seen) > 1  # a new draw every batch
    changed = np.abs(attacks.adversarial_batch(logit_fn, [tf.constant(x)], tf.constant(y), 2.0, 1, 1.0)[0].numpy()
                     - x).reshape(32, -1).max(axis=1) > 0
    assert changed.all()
