"""Training: datasets, face crops cached once, augmentations, Self-Blended Images, the backbone,
the architectures, the training loop, calibration, and saving a model folder (with its TF Lite copy).

Commands: ``python -m detector prepare``, ``python -m detector train``, ``python -m detector export-lite``.
"""
