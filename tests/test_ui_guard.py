"""One guarded call (detector.ui.guard): a result, the refusal's own sentence, or the event's failure sentence."""

from __future__ import annotations

import logging

from detector.errors import UnsupportedFormatError
from detector.ui.guard import guarded


def test_a_successful_call_returns_its_value():
    out = guarded(lambda: 42, "failed", "detect")
    assert out.ok and out.value == 42 and out.error is None


def test_a_refused_input_keeps_its_own_sentence():
    def refuse():
        raise UnsupportedFormatError("This file is a PDF document, not an image.")

    out = guarded(refuse, "Something went wrong.", "detect")
    assert not out.ok and out.refused and out.value is None
    assert out.error == "This file is a PDF document, not an image."
    assert out.text("Could not analyse this file:") == "Could not analyse this file: This file is a PDF document, not an image."
    assert out.markdown("Could not analyse this file:") == "**Could not analyse this file:** This file is a PDF document, not an image."


def test_an_unexpected_failure_logs_only_its_type_and_shows_the_events_sentence(caplog):
    def crash():
        raise RuntimeError("/tmp/secret-upload-name.jpg exploded")

    with caplog.at_level(logging.ERROR):
        out = guarded(crash, "Something went wrong.", "video api")
    assert not out.ok and not out.refused and out.error == "Something went wrong."
    assert out.text("Could not analyse this file:") == "Something went wrong."
    assert out.markdown("Could not analyse this file:") == "**Something went wrong.**"
    assert "video api failed: RuntimeError" in caplog.text and "secret-upload-name" not in caplog.text
