"""Explanations: class-activation heatmaps (Grad-CAM family) and the overlays a person reads.

Arrays in, maps and pictures out: nothing here imports ``detector`` (``tests/test_architecture.py``
checks it).  The names below are the only vocabulary the rest of the project takes from here.
"""

# The heatmaps explain.gradcam computes; the first is the default (chosen by bench/fidelity.py, see docs/heatmaps.md).
METHODS = ("gradcam++", "gradcam", "hirescam", "layercam")
BACKENDS = ("fused", "tf-keras-vis")  # how they are computed (explain.gradcam's module docstring)
