"""Inference: one image (or video) in, one :class:`~detector.inference.results.DetectionResult` out.

Loading and checking a saved model folder, finding and cropping faces, the classifier's forward
pass (TF Lite or TensorFlow), the pipeline that ties them together, the result type, video
sampling and the Hugging Face Hub download.  Nothing here imports training, evaluation, batch or
UI code (``tests/test_architecture.py`` checks it).
"""
