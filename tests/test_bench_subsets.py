"""The per-content breakdown reads its subsets from the manifest's origin paths."""

from bench.subsets import subset_of


def test_the_subset_is_the_folder_an_image_came_from():
    assert subset_of("owner__Regularization-Images-blonde_woman/blonde_woman/0001.png") == "blonde_woman"
    assert subset_of("Hossein88-eng__gender-classification-doe/data/man/x.jpg") == "man"
    assert subset_of("a\\b\\woman\\y.jpg") == "woman"
    assert subset_of("") == "?"
