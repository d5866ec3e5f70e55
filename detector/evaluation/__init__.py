"""Evaluation: metrics, the per-source and robustness report, leave-one-source-out, the model card.

Commands: ``python -m detector evaluate``, ``python -m detector loso``, ``python -m detector card``.
"""
