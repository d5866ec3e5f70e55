"""The training -> calibration -> evaluation pipeline runs end to end on a tiny dataset made in code."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from detector.evaluation import evaluate, loso
from detector.inference.bundle import load_bundle
from detector.training import sbi, train

pytestmark = pytest.mark.slow  # trains small models (about 40 s on two cores)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, astronaut, hopper):
    """Two sources; real = jittered portrait crops, fake = their self-blended versions."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for src, photo in (("astro", astronaut), ("hopper", hopper)):
        for split, n in (("train", 6), ("val", 4)):
            for i in range(n):
                y0, x0 = rng.integers(0, 40, 2)
                real = cv2.resize(np.ascontiguousarray(photo[y0:y0 + 300, x0:x0 + 300]), (96, 96))
                fake, _ = sbi.self_blend(real, None, rng)
                for label, img in (("real", real), ("fake", fake)):
                    path = root / src / split / label / f"{i}.jpg"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(img).save(path, quality=95)
    return root


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    cfg = train.parse_args(["--data", str(tiny_dataset), "--out", str(out), "--prepared", str(out / "prep"),
                            "--architecture", "small_cnn", "--input-size", "32", "--epochs", "2", "--keep-no-face",
                            "--sbi", "legacy",
                            "--steps-per-epoch", "2", "--batch-size", "8", "--sbi-prob", "0.5"])
    train.train(cfg)
    return out


def test_training_writes_a_calibrated_model_with_its_card(trained):
    model, cfg = load_bundle(trained)
    assert cfg.input_size == 32 and 0 < cfg.threshold < 1 and cfg.temperature > 0
    assert set(cfg.metrics["val"]) == {"astro", "hopper", "overall"}
    assert cfg.training["architecture"] == "small_cnn" and cfg.training["sbi_prob"] == 0.5
    history = (trained / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss") and len(history) == 3
    assert (trained / "history.png").stat().st_size > 0


def test_config_file_and_flags_merge(tmp_path):
    data = tmp_path / "d"
    data.mkdir()  # --data must exist
    (tmp_path / "c.json").write_text(json.dumps({"data": str(data), "epochs": 7, "sbi_prob": 0.1}))
    cfg = train.parse_args(["--config", str(tmp_path / "c.json"), "--epochs", "3"])
    assert (cfg.data, cfg.epochs, cfg.sbi_prob) == (str(data), 3, 0.1)


class StubData:
    """The parts of a prepared set the batch maker reads: labels, sources, landmarks and crops."""

    def __init__(self, rows, side=64):
        self.rows = rows
        self.source = np.array([r["source"] for r in rows])
        self.label = np.array([r["label"] for r in rows])
        self.side = side

    def crop(self, i):
        return np.full((self.side, self.side, 3), 100 + 10 * self.label[i], np.uint8)


def stub_rows():
    return [{"source": s, "label": lab, "landmarks": {}} for s, n in (("big", 90), ("small", 10))
            for lab in (0, 1) for _ in range(n)]


@pytest.mark.parametrize("mode", ["legacy", "off"])
def test_balanced_batches_draw_every_source_and_label_equally(mode):
    rows = stub_rows()
    cfg = train.TrainConfig(batch_size=400, sbi=mode, sbi_prob=0.0, augment=False, input_size=32, patch=16)
    gen = train.Batches(StubData(rows), np.arange(len(rows)), cfg)
    inputs, y = next(iter(gen))
    assert inputs["image"].shape == (400, 32, 32, 3) and inputs["patches"].shape == (400, 4, 16, 16, 3)
    assert 0.4 < y.mean() < 0.6
    batch = gen.samples()
    small = sum(1 for _ in batch)  # every slot filled
    assert small == 400


def test_paper_batches_are_half_real_a_quarter_sbi_of_those_reals_and_a_quarter_dataset_fakes():
    rows = stub_rows()
    cfg = train.TrainConfig(batch_size=32, sbi="paper", augment=False, input_size=32, patch=16)
    gen = train.Batches(StubData(rows), np.arange(len(rows)), cfg)
    batch = gen.samples()
    labels = [lab for _, lab in batch]
    assert labels[:16] == [0] * 16 and labels[16:] == [1] * 16
    # the SBI slots (16..23) are made from the first eight reals of the batch: same base picture
    for real, fake in zip(batch[:8], batch[16:24], strict=True):
        assert real[0].shape == fake[0].shape
    # dataset fakes (24..31) are stored fakes: the stub's fake crops are uniformly 110
    assert all(int(img.mean()) == 110 for img, _ in batch[24:])


def test_evaluate_writes_metrics_report_and_plots(trained, tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = evaluate.evaluate(str(tiny_dataset), str(trained), str(tmp_path / "eval"), split="val",
                               perturbations=["jpeg50", "down0.5"])
    assert result["n"] == 16
    m = result["metrics"]
    assert set(m) == {"astro", "hopper", "overall"}
    for key in ("auc", "ap", "accuracy", "balanced_accuracy", "eer", "ece", "confusion"):
        assert key in m["overall"]
    assert set(result["robustness"]) == {"jpeg50", "down0.5"}
    for name in ("metrics.json", "report.md", "roc.png", "reliability.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "| overall |" in (tmp_path / "eval" / "report.md").read_text()
    cf = result["cross_fitted"]  # every folder image is its own group: enough groups to cross-fit
    assert len(cf["folds"]) == 2 and sum(f["n"] for f in cf["folds"]) == 16
    assert set(cf["metrics"]) == {"astro", "hopper", "overall"} and 0 <= cf["metrics"]["overall"]["ece"] <= 1
    assert "cross-fitting by group" in (tmp_path / "eval" / "report.md").read_text()


def test_init_from_continues_from_a_saved_model(trained, tiny_dataset, tmp_path):
    src, src_cfg = load_bundle(trained)
    out = tmp_path / "continued"
    base = ["--data", str(tiny_dataset), "--out", str(out), "--prepared", str(trained / "prep"),
            "--architecture", "small_cnn", "--input-size", "32", "--epochs", "1", "--steps-per-epoch", "1",
            "--batch-size", "8", "--keep-no-face", "--init-from", str(trained)]
    train.train(train.parse_args(base + ["--learning-rate", "0", "--head-learning-rate", "0"]))  # no update
    model, cfg = load_bundle(out)
    assert cfg.training["init_from"] == str(trained)
    convs = [w.name for w in src.layers if w.__class__.__name__ == "Conv2D"]
    assert convs
    for name in convs:
        for a, b in zip(src.get_layer(name).get_weights(), model.get_layer(name).get_weights(), strict=True):
            np.testing.assert_allclose(a, b)
    with pytest.raises(SystemExit, match="small_cnn@32"):  # a model of another shape cannot seed this run
        train.train(train.parse_args(["--data", str(tiny_dataset), "--out", str(tmp_path / "other"),
                                      "--prepared", str(tmp_path / "prep48"), "--architecture", "small_cnn",
                                      "--input-size", "48", "--init-from", str(trained)]))


def test_calibration_is_fitted_on_every_validation_row_the_app_would_score(trained, tiny_dataset, tmp_path):
    """No-face rows stay out of training and model selection, but the app scores such a photo on its centre,
    so temperature, threshold and the reported validation metrics include them."""
    import csv
    import shutil

    prep = tmp_path / "prep"
    shutil.copytree(trained / "prep", prep)
    with open(prep / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = [r for r in rows if r["split"] == "val"]
    for r in val[:3]:
        r["face_found"] = "0"
    with open(prep / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    data = train.Prepared(prep)
    cfg = train.parse_args(["--data", str(tiny_dataset), "--out", str(tmp_path / "m"), "--prepared", str(prep),
                            "--architecture", "small_cnn", "--input-size", "32", "--epochs", "1",
                            "--steps-per-epoch", "1", "--batch-size", "8", "--sbi", "legacy"])
    _, val_idx, _ = train.select_rows(data, cfg)
    assert len(val_idx) == len(val) - 3 and len(train.calibration_rows(data, cfg)) == len(val)
    held_out = train.parse_args(["--data", str(tiny_dataset), "--exclude-source", "hopper"])
    assert set(data.source[train.calibration_rows(data, held_out)]) == {"astro"}
    train.train(cfg)
    _, card = load_bundle(tmp_path / "m")
    assert card.metrics["rows"]["val"] == len(val) - 3 and card.metrics["rows"]["calibration"] == len(val)
    assert card.metrics["val"]["overall"]["n"] == len(val)


def test_leave_one_source_out_scores_the_source_it_never_saw(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    loso.main(["--data", str(tiny_dataset), "--out", str(tmp_path / "loso"), "--prepared", str(tmp_path / "prep"),
               "--epochs", "1", "--steps-per-epoch", "1", "--sources", "astro", "--",
               "--architecture", "small_cnn", "--input-size", "32", "--batch-size", "8", "--keep-no-face"])
    table = json.loads((tmp_path / "loso" / "loso.json").read_text())["folds"]
    assert set(table) == {"astro"} and table["astro"]["n"] == 20  # every astro image, train and val
    assert "| astro |" in (tmp_path / "loso" / "loso.md").read_text()


def test_the_new_recipe_trains_end_to_end(tiny_dataset, tmp_path, trained):
    """The shipped recipe in miniature: two branches, paper-style SBI with parts, adversarial batches, families."""
    out = tmp_path / "dual"
    cfg = train.parse_args(["--data", str(tiny_dataset), "--out", str(out), "--prepared", str(trained / "prep"),
                            "--architecture", "dual_small", "--input-size", "32", "--patch", "16", "--epochs", "1",
                            "--steps-per-epoch", "2", "--batch-size", "8", "--sbi", "paper", "--part-prob", "1",
                            "--adv-eps", "2", "--keep-no-face", "--exclude-source", "hopper"])
    train.train(cfg)
    model, card = load_bundle(out)
    assert card.inputs == ["image", "patches"] and card.artefact_layer == "art_stage2_out"
    assert card.map_layers == ["block1_relu2", "art_stage2_out"]
    assert set(card.metrics["held_out"]) == {"hopper", "overall"}
    assert (out / "model.tflite").is_file() and card.lite_source_sha256 == card.sha256
    from detector.inference.pipeline import Detector

    det = Detector(out, warmup=False)
    assert det.engine == "tflite" and det.has_patches


def test_compare_puts_loso_runs_side_by_side(tmp_path, capsys):
    for name, aucs in (("a", {"S1": 0.6, "S2": 0.8}), ("b", {"S1": 0.7})):
        folds = {s: {"held_out_auc": v, "n": 10, "held_out_ap": v, "held_out_balanced_accuracy": v,
                     "val_mean_auc_trained_sources": 0.9, "best_epoch": 1} for s, v in aucs.items()}
        (tmp_path / name).mkdir()
        (tmp_path / name / "loso.json").write_text(json.dumps({"settings": ["--sbi-prob", "0"], "folds": folds}))
    loso.main(["--compare", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}", "--out", str(tmp_path / "cmp")])
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| a | 0.600 | 0.800 | 0.700 | 0.600 | 0.900 |" in md
    assert "| b | 0.700 | – | 0.700 | 0.700 | 0.900 |" in md  # a fold that was not run shows as missing
    assert "mean, unseen, on S1 |" in md  # and the recipes are compared on the folds both have
    got = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert got["a"]["mean_held_out_auc"] == pytest.approx(0.7)
    assert got["a"]["mean_held_out_auc_shared_folds"] == pytest.approx(0.6) and got["a"]["shared_folds"] == ["S1"]
    with pytest.raises(SystemExit):
        loso.main(["--compare", "no-equals-sign", "--out", str(tmp_path / "cmp")])
    # another seed of recipe a (given as its loso.json): averaged fold by fold, each run shown beside
    (tmp_path / "a2.json").write_text(json.dumps({"settings": ["--seed", "2"], "folds": {
        "S1": {"held_out_auc": 0.5, "n": 10, "val_mean_auc_trained_sources": 0.7}}}))
    loso.main(["--compare", f"a={tmp_path / 'a'},{tmp_path / 'a2.json'}", f"b={tmp_path / 'b'}",
               "--out", str(tmp_path / "cmp2")])
    md = (tmp_path / "cmp2" / "compare.md").read_text()
    assert "| a | 0.550 (0.600, 0.500) | 0.800 | 0.675 | 0.550 | 0.850 |" in md, md
    got = json.loads((tmp_path / "cmp2" / "compare.json").read_text())["a"]
    assert got["folds"]["S1"]["runs"] == 2 and got["folds"]["S2"]["runs"] == 1
    assert [r["settings"] for r in got["runs"]] == [["--sbi-prob", "0"], ["--seed", "2"]]


def test_compare_pairs_runs_by_fold_and_seed_and_says_whether_the_lead_is_shown(tmp_path):
    def run(name, seed, aucs):
        folds = {f: {"held_out_auc": v, "n": 10, "val_mean_auc_trained_sources": 0.8} for f, v in aucs.items()}
        settings = ["--sbi", "paper"] + (["--seed", str(seed)] if seed is not None else [])
        (tmp_path / f"{name}.json").write_text(json.dumps({"settings": settings, "folds": folds}))
        return str(tmp_path / f"{name}.json")

    # "lead": 0.10 above "steady" on every fold and seed (with a little spread) -> shown;
    # "noisy": as good on average as "steady" but swings either way -> tied with the leader.
    lead = [run("lead-a", None, {"F1": 0.70, "F2": 0.61}), run("lead-b", 3, {"F1": 0.68, "F2": 0.60})]
    steady = [run("steady-a", None, {"F1": 0.60, "F2": 0.50}), run("steady-b", 3, {"F1": 0.59, "F2": 0.49})]
    noisy = [run("noisy-a", 1234, {"F1": 0.80, "F2": 0.40}), run("noisy-b", 3, {"F1": 0.45, "F2": 0.75}),
             run("noisy-c", 99, {"F1": 0.10, "F2": 0.10})]  # seed 99: no partner run of the leader, ignored
    assert loso.run_seed(["--seed", "3"]) == 3 and loso.run_seed([]) == train.TrainConfig.seed
    loso.main(["--compare", "steady=" + ",".join(steady), "lead=" + ",".join(lead), "noisy=" + ",".join(noisy),
               "--out", str(tmp_path / "cmp")])
    got = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert "vs_leader" not in got["lead"]
    v = got["steady"]["vs_leader"]
    assert v["leader"] == "lead" and v["pairs"] == 4 and v["leader_better"] == 4 and v["shown"]
    assert v["mean_difference"] == pytest.approx(0.1025)
    assert v["standard_error"] == pytest.approx(math.sqrt(2.75e-4 / 3 / 4))  # sample SD / sqrt(n)
    n = got["noisy"]["vs_leader"]
    assert n["pairs"] == 4 and n["leader_better"] == 2 and not n["shown"]
    assert n["mean_difference"] == pytest.approx((-0.10 + 0.21 + 0.23 - 0.15) / 4)
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "Paired against the leader, *lead*" in md
    assert "| steady | 4 | 0.103 | 0.005 | 4 of 4 | yes |" in md and "| noisy | 4 |" in md and "no: tied |" in md


def test_background_batches_keep_order_and_hand_over_worker_errors():
    assert list(train.background(iter(range(10)), depth=2)) == list(range(10))

    def broken():
        yield 1
        raise RuntimeError("augmentation failed")

    out = train.background(broken())
    assert next(out) == 1
    with pytest.raises(RuntimeError, match="augmentation failed"):
        next(out)
    endless = train.background(iter(lambda: 0, 1), depth=1)  # an infinite source, as in training
    assert next(endless) == 0
    endless.close()  # must not hang
    # ... and leaves no worker behind: a daemon thread still making a batch (OpenCV) when the
    # interpreter finalises aborts the process, which is how one CI run ended.
    import threading
    assert not [t for t in threading.enumerate() if t.name == "fdet-batches"]

    def slow():
        import time
        while True:
            time.sleep(0.5)  # a batch that takes a while to make
            yield 0

    taken = train.background(slow(), depth=1)
    assert next(taken) == 0
    taken.close()
    assert not [t for t in threading.enumerate() if t.name == "fdet-batches"]


def test_the_attack_bench_prints_the_attack_table_as_json(trained, tiny_dataset, tmp_path, capsys):
    from bench import attacks as bench_attacks

    out = tmp_path / "attacks.json"
    assert bench_attacks.main(["--data", str(tiny_dataset), "--model", str(trained), "--eps", "8",
                               "--per-class", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    doc = json.loads(printed.out)
    assert doc == json.loads(out.read_text()) and doc["model"]["sha256"]
    table = doc["attacks"]
    assert 0 < table["rows"] <= 8 and table["per_class"] == 2  # at most 2 per class x 2 labels x 2 sources
    assert set(table["results"]) == {"fgsm/both/eps8", "fgsm/fakes/eps8", "pgd10/both/eps8", "pgd10/fakes/eps8"}
    for r in table["results"].values():
        assert set(r) == {"attack", "attack_jpeg90"} and set(r["attack"]) == set(table["clean"])
        assert "overall" in r["attack"]
    assert "| clean |" in printed.err  # the Markdown table on stderr
    assert bench_attacks.main(["--data", str(tmp_path / "missing")]) == 1


def test_a_tiny_training_run_with_reconstruction_fakes(tiny_dataset, tmp_path, trained):
    """Reconstructions cached by an (untrained, tiny) autoencoder of the latent-diffusion shape feed a real run."""
    from detector.training import own_ae, reconstructions
    from detector.training.prepare import Prepared

    prep = trained / "prep"
    data = Prepared(prep)
    ae = own_ae.OwnAutoencoder(own_ae.build_encoder(8), own_ae.build_decoder(8), "own", "own-tinytest")
    rows = reconstructions.eligible_rows(data)
    cache = reconstructions.build(data, ae, rows, reconstructions.cache_dir(prep, ae.key))
    out = tmp_path / "recon"
    cfg = train.parse_args(["--data", str(tiny_dataset), "--out", str(out), "--prepared", str(prep),
                            "--architecture", "dual_small", "--input-size", "32", "--patch", "16", "--epochs", "1",
                            "--steps-per-epoch", "2", "--batch-size", "8", "--sbi", "paper", "--keep-no-face",
                            "--recon", str(cache), "--recon-share", "0.5", "--no-lite"])
    train.train(cfg)
    _, card = load_bundle(out)
    assert card.training["recon"] == [str(cache)] and card.training["recon_share"] == 0.5
    loaded = train.load_recon(cfg, data, prep)
    assert len(loaded) == 1 and set(loaded[0].rows) == set(rows.tolist())
