"""What a "no sign found" is worth: the share of fakes from a generator the model never saw that it missed.

Read from the shipped model's own leave-one-source-out evaluation (``eval/loso.json`` beside the
model), never typed into the code: a new model brings its own figure.  The ``diffusion`` fold holds
out every diffusion-made face during training and measures on them afterwards -- the closest thing
we have to "a generator nobody told the model about", which is what most users bring.
"""

from __future__ import annotations

import json
from pathlib import Path

LOSO_FILE = Path("eval") / "loso.json"
UNSEEN_FOLD = "diffusion"
# The share caught at the fold model's own calibrated threshold: the threshold the verdict uses, so
# "no sign found" is worth what this says.  (``recall_at_5pct_reals`` -- caught at a threshold set on the
# unseen family's own reals -- answers another question and is only the fallback.)
CAUGHT_KEYS = ("held_out_fakes_caught", "recall_at_5pct_reals")


def unseen_fakes_missed(model_dir: str | Path | None) -> float | None:
    """The share (0-1) of held-out diffusion fakes the model called real, or None when the model has no
    such figure (no file, no fold, no key, or a value that is not a share)."""
    if model_dir is None:
        return None
    try:
        folds = json.loads((Path(model_dir) / LOSO_FILE).read_text(encoding="utf-8")).get("folds") or {}
        fold = folds.get(UNSEEN_FOLD) or {}
    except (OSError, ValueError, AttributeError):
        return None
    for key in CAUGHT_KEYS:
        caught = fold.get(key) if isinstance(fold, dict) else None
        if isinstance(caught, (int, float)) and not isinstance(caught, bool) and 0.0 <= caught <= 1.0:
            return 1.0 - float(caught)
    return None
