"""Explanations: Grad-CAM / Grad-CAM++ heatmaps and the overlays a person reads.

Arrays in, maps and pictures out: nothing here imports ``detector`` (``tests/test_architecture.py``
checks it).  The names below are the only vocabulary the rest of the project takes from here.
"""

METHODS = ("gradcam++", "gradcam")  # the heatmaps explain.gradcam computes; the first is the default
BACKENDS = ("fused", "tf-keras-vis")  # how they are computed (explain.gradcam's module docstring)
