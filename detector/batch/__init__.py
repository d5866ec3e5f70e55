"""Batch: scan files and folders of photos and videos, and write the JSON/CSV/HTML reports.

Command: ``python -m detector scan``.
"""
