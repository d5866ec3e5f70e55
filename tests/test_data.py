"""Datasets from a manifest or from any real/ fake/ folder tree."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detector.training.data import read_dataset, read_folder, read_manifest


def _img(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(path)


def test_folder_tree_gives_labels_sources_and_splits(tmp_path):
    _img(tmp_path / "gan" / "train" / "fake" / "a.png")
    _img(tmp_path / "gan" / "val" / "real" / "b.jpg")
    _img(tmp_path / "phone" / "real" / "sub" / "c.jpg")
    (tmp_path / "phone" / "real" / "notes.txt").write_text("not an image")
    rows = {r.path.split("/")[-1]: r for r in read_folder(tmp_path)}
    assert set(rows) == {"a.png", "b.jpg", "c.jpg"}
    assert (rows["a.png"].label, rows["a.png"].source, rows["a.png"].split) == (1, "gan", "train")
    assert (rows["b.jpg"].label, rows["b.jpg"].split) == (0, "val")
    assert rows["c.jpg"].source == "phone" and rows["c.jpg"].split == "val"


def test_manifest_paths_are_relative_to_it(tmp_path):
    _img(tmp_path / "x" / "1.png")
    (tmp_path / "manifest.csv").write_text("path,label,source,split,group\nx/1.png,fake,S,val,g1\n")
    (row,) = read_dataset(tmp_path)
    assert row.path == str(tmp_path / "x" / "1.png") and row.label == 1 and row.group == "g1"


def test_bad_label_is_refused(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\na.png,maybe\n")
    with pytest.raises(ValueError, match="real or fake"):
        read_manifest(tmp_path / "m.csv")


def test_folder_without_real_or_fake_is_refused(tmp_path):
    _img(tmp_path / "cats" / "1.png")
    with pytest.raises(ValueError, match="real/ or fake/"):
        read_dataset(tmp_path)
