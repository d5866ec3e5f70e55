"""REST errors as documented (issue 22, item 5): every refusal is a 400/413/415 with the JSON ``error``
keys, never FastAPI's 422 ``{"detail": ...}``; the docs page addresses the server it is read on.

The router runs on a bare FastAPI app with a stand-in detector (no model), through Starlette's test client.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from detector.config import Limits
from detector.inference.results import error_dict
from detector.ui.rest import PREFIX, rest_router


class StubDetector:
    limits = Limits()

    def analyze(self, data, **kwargs):
        raise AssertionError("a refused request must not reach the model")


@pytest.fixture(scope="module")
def client():
    app = FastAPI()
    app.include_router(rest_router(StubDetector()))
    return TestClient(app, base_url="http://detector.example:8123")


def _refused(r, status: int = 400) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert "detail" not in body and set(body) == set(error_dict("x"))
    assert isinstance(body["error"], str) and body["message"] == body["error"] and "\n" not in body["error"]
    return body


def test_a_form_without_the_image_field_is_400_with_error(client):
    body = _refused(client.post(f"{PREFIX}/detect", files={"picture": ("a.jpg", b"\xff\xd8")}))
    assert "field named image" in body["error"] and "curl -F image=@" in body["error"]


def test_an_empty_form_is_400_with_error(client):
    body = _refused(client.post(f"{PREFIX}/detect", data={"cam_method": "off"}, files={"x": ("", b"")}))
    assert "image" in body["error"]


@pytest.mark.parametrize("ctype", ["image/jpeg", "application/octet-stream", None])
def test_a_raw_body_is_400_with_error_that_says_what_to_send(client, ctype):
    headers = {"content-type": ctype} if ctype else {}
    body = _refused(client.post(f"{PREFIX}/detect", content=b"\xff\xd8\xff\xe0 raw jpeg bytes", headers=headers))
    assert "not a multipart form upload" in body["error"] and "field named image" in body["error"]
    assert (ctype or "missing") in body["error"]


def test_a_broken_multipart_body_is_400_with_error(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    _refused(client.post(f"{PREFIX}/detect", content=b"--abc\r\nnot a real part\r\n", headers=headers))


def test_openapi_documents_no_422_and_names_this_server(client):
    doc = client.get(f"{PREFIX}/openapi.json").json()
    op = doc["paths"][f"{PREFIX}/detect"]["post"]
    assert "422" not in op["responses"] and {"200", "400", "413", "415"} <= set(op["responses"])
    assert "HTTPValidationError" not in doc.get("components", {}).get("schemas", {})
    assert doc["servers"] == [{"url": "http://detector.example:8123"}]


def test_docs_page_uses_the_requests_own_address_one_example_and_no_backticks(client):
    page = client.get(f"{PREFIX}/docs").text
    assert "7860" not in page  # the port it is served on, not a fixed one
    assert page.count("curl -F image=@photo.jpg") == 1  # one example, not one in the text and one below
    assert "curl -F image=@photo.jpg -F cam_method=gradcam++ http://detector.example:8123/api/v1/detect" in page
    assert "`" not in page  # code is set as <code>, not shown as backticks
    assert "<code>cam_method</code>" in page and "<code>image</code>" in page
    assert 'name="viewport"' in page
