"""Scoring stored face crops with a classifier: native crops in, P(fake) out, in batches.

Shared by ``evaluate`` (clean and degraded crops) and ``attacks`` (attacked crops): both cut the
model's views with :func:`detector.inference.views.face_views`, exactly as the app does.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from ..inference.views import face_views
from ..training.prepare import Prepared


def score_natives(classifier, spec, natives, batch: int = 128, desc: str = "scoring", transform=None) -> np.ndarray:
    """P(fake) of native crops (a list, or a Prepared's rows via ``natives(i)``), ``transform``-ed first."""
    patches = "patches" in classifier.inputs
    out = []
    for s in tqdm(range(0, len(natives), batch), desc=desc, unit="batch", leave=False):
        chunk = [natives[i] for i in range(s, min(len(natives), s + batch))]
        if transform is not None:
            chunk = [transform(np.ascontiguousarray(c)) for c in chunk]
        v = face_views(chunk, spec, patches)
        out.append(classifier.predict({"image": v.image, "patches": v.patches}))
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


class Crops:
    """Lazy sequence of the native crops of some prepared rows."""

    def __init__(self, data: Prepared, idx: list[int]):
        self.data, self.idx = data, list(idx)

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, k: int) -> np.ndarray:
        return self.data.crop(self.idx[k])
