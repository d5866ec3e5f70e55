"""The model card is rendered from measured JSON, in the Hugging Face format."""

from __future__ import annotations

import json

import pytest

from detector.evaluation import card
from detector.inference.bundle import ModelConfig


def _metrics(auc):
    return {"n": 10, "auc": auc, "ap": 0.9, "accuracy": 0.8, "balanced_accuracy": 0.8, "eer": 0.2, "ece": 0.04,
            "false_positive_rate": 0.1, "tpr_fake": 0.7, "confusion": {"tp": 1, "tn": 1, "fp": 1, "fn": 1}}


def test_card_has_front_matter_and_every_measured_number(tmp_path):
    cfg = ModelConfig(version="1.2.3", threshold=0.41, temperature=1.7, trained_on="../shared/data/faces",
                      training={"epochs": 4, "sbi_prob": 0.25}, metrics={"best_epoch": 3})
    (tmp_path / "model.json").write_text(json.dumps(cfg.__dict__))
    ev = {"n": 20, "faces_found": 19, "metrics": {"A": _metrics(0.9512), "overall": _metrics(0.9377)},
          "robustness": {"jpeg50": {"A": {"auc": 0.91, "drop": 0.0412}, "overall": {"auc": 0.9, "drop": 0.0377}}},
          "cross_fitted": {"folds": [], "metrics": {"overall": {"n": 20, "ece": 0.0734, "balanced_accuracy": 0.81,
                                                                "false_positive_rate": 0.2}}}}
    (tmp_path / "eval.json").write_text(json.dumps(ev))
    loso = {"folds": {"A": {"n": 30, "held_out_auc": 0.6123, "held_out_balanced_accuracy": 0.55,
                            "val_mean_auc_trained_sources": 0.88}}}
    (tmp_path / "loso.json").write_text(json.dumps(loso))
    cmp = {"no-sbi": {"settings": [], "folds": {"A": {"held_out_auc": 0.5432, "val_mean_auc_trained_sources": 0.8}},
                      "mean_held_out_auc": 0.5432, "mean_val_auc": 0.8}}
    (tmp_path / "compare.json").write_text(json.dumps(cmp))
    card.main(["--model", str(tmp_path), "--eval", str(tmp_path / "eval.json"), "--loso", str(tmp_path / "loso.json"),
               "--compare", str(tmp_path / "compare.json")])
    text = (tmp_path / "MODEL_CARD.md").read_text()
    assert text.startswith("---\nlicense: other\nlicense_name: research-use-weights") and "value: 0.9377" in text
    assert "**Code: MIT.**" in text and "research and evaluation use only" in text
    for needle in ("1.2.3", "0.410", "1.700", "0.951", "0.041", "0.612", "`sbi_prob=0.25`", "best epoch 3",
                   "| no-sbi | 0.543 |", "| overall | 20 | 0.073 | 0.810 |",
                   "## Intended use", "## Out-of-scope use and misuse", "## Limitations", "## Ethical considerations"):
        assert needle in text, needle


def test_the_hardening_bench_tabulates_clean_cost_and_attacked_auc_and_the_card_shows_it(tmp_path, capsys):
    from bench import hardening

    def model(name, aucs, adv):
        d = tmp_path / name
        d.mkdir()
        cfg = ModelConfig(version=name, training={"adv_eps": adv, "adv_steps": 3 if adv else 1, "adv_share": 0.5},
                          metrics={"val": {s: {"auc": a} for s, a in aucs.items()}, "val_mean_source_auc": 0.9})
        (d / "model.json").write_text(json.dumps(cfg.__dict__))
        rows = {k: {"attack": {"overall": {"auc": v}}} for k, v in
                (("fgsm/fakes/eps2", 0.1 + adv), ("pgd10/fakes/eps2", adv / 10), ("pgd10/both/eps2", 0.0))}
        (d / "attacks.json").write_text(json.dumps({"attacks": {"rows": 12, "clean": {"overall": {"auc": 0.9}},
                                                                "results": rows}}))
        return f"{name}={d}:{d / 'attacks.json'}"

    out = tmp_path / "hardening.json"
    assert hardening.main([model("plain", {"A": 0.95, "B": 0.80}, 0),
                           model("pgd", {"A": 0.93, "B": 0.71}, 2), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    pgd = report["runs"][1]
    assert report["reference"] == "plain" and pgd["clean_cost"] == {"A": 0.02, "B": 0.09}
    assert pgd["worst_clean_cost"] == 0.09 and pgd["attacked_auc"]["pgd10/fakes/eps2"] == 0.2
    table = card.hardening_table(report)
    assert "| pgd | PGD-3 eps 2, share 0.5 | 0.930 | 0.710 | 0.900 | 0.090 | 2.100 | 0.200 | 0.000 |" in table
    assert "| plain | none |" in table and "reference" in table
    assert hardening.main(["x=" + str(tmp_path / "nowhere") + ":" + str(tmp_path / "no.json")]) == 1
    card.main(["--model", str(tmp_path / "plain"), "--hardening", str(out), "--hardening-note", "Two fine-tunes."])
    text = (tmp_path / "plain" / "MODEL_CARD.md").read_text()
    assert "### Adversarial hardening compared" in text and "Two fine-tunes." in text and "| pgd | PGD-3" in text
    notes = tmp_path / "notes.json"  # the same sentences from a file; a flag still wins over it
    notes.write_text(json.dumps({"hardening": "From the file.", "training": "Stopped at epoch 2."}))
    card.main(["--model", str(tmp_path / "plain"), "--hardening", str(out), "--notes", str(notes)])
    text = (tmp_path / "plain" / "MODEL_CARD.md").read_text()
    assert "From the file." in text and "Stopped at epoch 2." in text
    card.main(["--model", str(tmp_path / "plain"), "--hardening", str(out), "--notes", str(notes),
               "--hardening-note", "From the flag."])
    text = (tmp_path / "plain" / "MODEL_CARD.md").read_text()
    assert "From the flag." in text and "From the file." not in text and "Stopped at epoch 2." in text
    notes.write_text(json.dumps({"hardnening": "typo"}))
    with pytest.raises(SystemExit):
        card.main(["--model", str(tmp_path / "plain"), "--notes", str(notes)])
