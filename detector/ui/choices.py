"""The heatmap and video choices the apps offer, and how a choice becomes a detector argument."""

from __future__ import annotations

from ..config import CAM_METHODS, MAX_VIDEO_FRAMES, VIDEO_FRAMES, VIDEO_TOP_K
from ..errors import DetectorError

CAM_LABELS = {"gradcam++": "Grad-CAM++", "gradcam": "Grad-CAM", "hirescam": "HiResCAM",
              "layercam": "LayerCAM"}  # what a person reads, per method
CAM_OFF = "off"
# Methods whose maps equal another's for this model's layers, which end in global average pooling:
# the gradient is then the same at every location, so HiResCAM is Grad-CAM and LayerCAM is Grad-CAM++
# up to scale, and normalised maps are identical (explain.gradcam; the fidelity bench measures them
# equal).  The apps do not offer a choice that changes nothing; the APIs still accept them.
SAME_AS = {"hirescam": "gradcam", "layercam": "gradcam++"}
SAME_MAPS = ("HiResCAM and LayerCAM are not offered: for this model they draw the same maps as Grad-CAM and "
             "Grad-CAM++ (the API still accepts them).")


def cam_choices() -> list[tuple[str, str]]:
    """(label, value) per heatmap choice the apps offer: the methods that differ here, default first, then off."""
    return [(CAM_LABELS[m], m) for m in CAM_METHODS if m not in SAME_AS] + [(CAM_OFF, CAM_OFF)]


def api_cam_label() -> str:
    """The label of the API's ``cam_method`` field: every value it accepts."""
    return f"cam_method ({', '.join(CAM_METHODS)} or {CAM_OFF})"


def cam_method_from(choice: str | None) -> str | None:
    """UI/API choice ("Grad-CAM++", "gradcam", "off", ...) -> ``Detector.analyze`` cam_method."""
    c = (choice or CAM_OFF).strip().lower().replace("-", "").replace(" ", "").replace("_", "")
    if c in ("off", "none", "no", "false"):
        return None
    if c in ("gradcam++", "gradcampp", "gradcamplusplus"):
        return "gradcam++"
    if c in CAM_METHODS:
        return c
    raise DetectorError(f"Unknown heatmap method {choice!r}: use {', '.join(CAM_METHODS)} or {CAM_OFF}.")


def video_request(frames: float | None, top_k: float | None) -> tuple[int, int]:
    """(frames to sample, k) from a request: the defaults when missing, within 1..MAX_VIDEO_FRAMES."""
    max_frames = int(min(max(int(frames or VIDEO_FRAMES), 1), MAX_VIDEO_FRAMES))
    k = int(min(max(int(top_k or VIDEO_TOP_K), 1), max_frames))
    return max_frames, k
