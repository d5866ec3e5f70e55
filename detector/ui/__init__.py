"""What both web apps share, without a web framework: the game, the texts, the face table, the
heatmap choices, the example pictures and one guarded call.

``app.py`` (Gradio) and ``streamlit_app.py`` only wire widgets to these functions and to
:meth:`detector.Detector.analyze`; everything here is tested without a server (``tests/test_ui_*.py``).
"""
