"""The REST endpoint, served by the Gradio app's own server: ``POST /api/v1/detect``.

A Gradio app is a FastAPI app; these routes are handed to it when it starts
(``launch(app_kwargs={"routes": ...})``), so the web page, the ``gradio_client`` endpoints and this
plain HTTP endpoint share one port, one model and one concurrency limit::

    curl -F image=@photo.jpg -F cam_method=off http://127.0.0.1:7860/api/v1/detect

The answer is the JSON of the ``/detect`` Gradio endpoint (``DetectionResult.to_dict()``, with
``verdict`` and ``provenance``).  A refused upload gets the same keys with ``error`` set to its
one-sentence reason and an HTTP status: 413 too large (bytes or pixels), 415 not an image format
we read, 400 anything else wrong with the request (no ``image`` field, a body that is not a
multipart form, an empty, damaged or too small image, an unknown heatmap method) -- never FastAPI's
own 422 ``{"detail": ...}``.  The OpenAPI schema is at ``/api/v1/openapi.json``; ``/api/v1/docs`` renders it as a
plain page (no JavaScript, nothing fetched from a CDN: the app runs offline).
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException  # FastAPI's and Starlette's own (a broken multipart body)

from ..config import DEFAULT_CAM_METHOD, Limits
from ..errors import DetectorError, ImageTooLargeError, UnsupportedFormatError
from ..inference.results import error_dict
from .choices import cam_method_from
from .guard import guarded
from .texts import API_IMAGE_FAILED

PREFIX = "/api/v1"
MULTIPART_OVERHEAD = 64 * 1024  # bytes a multipart body may carry beyond the file itself


def curl_example(base_url: str) -> str:
    """The one example call, addressed to the server the reader is looking at (not a fixed port)."""
    return f"curl -F image=@photo.jpg -F cam_method=gradcam++ {base_url.rstrip('/')}{PREFIX}/detect"


def base_url(request: Request) -> str:
    """The server as the client reached it: scheme, host and port of the request (and any root path)."""
    return str(request.base_url).rstrip("/")


def status_for(err: DetectorError) -> int:
    """The HTTP status of a refused input: 413 too large, 415 unsupported format, 400 otherwise."""
    if isinstance(err, ImageTooLargeError):
        return 413
    if isinstance(err, UnsupportedFormatError):
        return 415
    return 400


def _refusal(message: str, status: int) -> JSONResponse:
    return JSONResponse(error_dict(message), status_code=status)


def _too_large(limits: Limits, size: int | None = None) -> JSONResponse:
    got = f"The upload is {size / 1e6:.1f} MB; " if size else "The upload is too large; "
    return _refusal(f"{got}the limit is {limits.max_upload_bytes / 1e6:.1f} MB.", 413)


def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    """A request FastAPI could not take apart (no ``image`` field, a raw body, a broken multipart
    body): the documented 400 with ``error``, and what to send instead."""
    how = f"send the image as the multipart form field named image, as in: {curl_example(base_url(request))}"
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data":
        return _refusal(f"The request is not a multipart form upload (its Content-Type is {kind or 'missing'}): "
                        f"{how}", 400)
    if isinstance(exc, RequestValidationError):
        fields = {str(err.get("loc", ("",))[-1]) for err in exc.errors()}
        if "image" in fields:
            return _refusal(f"The request has no image file in the field named image: {how}", 400)
        return _refusal(f"The request's fields are not valid ({', '.join(sorted(fields))}): {how}", 400)
    return _refusal(f"The multipart body could not be read: {how}", 400)


def _limited_route(limits: Limits) -> type[APIRoute]:
    """An APIRoute that refuses a body longer than the upload limit from its Content-Length header,
    before the multipart parser reads (and spools) any of it, and answers a request FastAPI cannot
    take apart with the documented 400 JSON (:func:`_bad_request`) instead of a 422 ``detail``."""

    class LimitedRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def limited(request: Request) -> Response:
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_upload_bytes + MULTIPART_OVERHEAD:
                    return _too_large(limits, int(declared))
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    return _bad_request(request, exc)
                except HTTPException as exc:
                    if exc.status_code != 400:  # "There was an error parsing the body", "Invalid multipart data"
                        raise
                    return _bad_request(request, exc)

            return limited

    return LimitedRoute


ERROR_EXAMPLE = {"application/json": {"example": error_dict("This file is a text file, not an image. The detector "
                                                            "reads JPEG, PNG, WebP, GIF, BMP and TIFF images.")}}


def rest_router(detector, limits: Limits | None = None, gate: threading.Semaphore | None = None) -> APIRouter:
    """The ``/api/v1`` routes for ``detector``; ``gate`` bounds the model calls shared with the web page."""
    limits = limits or detector.limits
    router = APIRouter(prefix=PREFIX, route_class=_limited_route(limits))

    @router.post(
        "/detect", tags=["detect"], summary="Score every face of one image",
        response_class=JSONResponse,
        description=(
            "Upload one image as the multipart field `image`. The answer is the detector's JSON result: "
            "`label` (fake/real at the model's threshold), `verdict` (fake, real, uncertain or no_face), "
            "`p_fake`, one entry per face (box, P(fake), verdict, heatmap), and `provenance`: what the file's "
            "metadata says about its origin (C2PA, IPTC digital source type, generator tags). Refused input "
            "gets the same keys with `error` set to a one-sentence reason."),
        responses={200: {"description": "The detector's result (`error` is null)."},
                   400: {"description": "No `image` field or not a multipart upload; an empty, damaged or too "
                                        "small image; or an unknown `cam_method`.",
                         "content": ERROR_EXAMPLE},
                   413: {"description": "Too many bytes or too many pixels.", "content": ERROR_EXAMPLE},
                   415: {"description": "Not an image format the detector reads.", "content": ERROR_EXAMPLE}})
    def detect(image: UploadFile = File(..., description="The image: JPEG, PNG, WebP, GIF, BMP or TIFF."),
               cam_method: str = Form(DEFAULT_CAM_METHOD, description="Heatmap method: gradcam++, gradcam, "
                                      "hirescam, layercam, or off (fastest).")) -> Response:
        data = image.file.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            return _too_large(limits)

        def run() -> dict[str, Any]:
            method = cam_method_from(cam_method)
            with gate or nullcontext():
                res = detector.analyze(data, cam_method=method, render_overlay=False, filename=image.filename)
            return res.to_dict()

        out = guarded(run, API_IMAGE_FAILED, "rest detect")
        if out.ok:
            return JSONResponse(out.value)
        return _refusal(str(out.error), status_for(out.cause) if out.cause is not None else 500)

    @router.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request) -> JSONResponse:
        return JSONResponse(schema(router, base_url(request)))

    @router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_page(schema(router, base_url(request)), base_url(request)))

    return router


def schema(router: APIRouter, server: str | None = None) -> dict[str, Any]:
    """The OpenAPI document of these routes only (not Gradio's internal ones), for ``server`` (its base URL).

    FastAPI's automatic 422 "Validation Error" answer is left out: this API answers such requests
    with its documented 400 (see :func:`_bad_request`)."""
    doc = get_openapi(title="Deepfake face detector API", version="1",
                      description="Per-face calibrated P(fake), heatmaps and provenance evidence for one image.",
                      routes=router.routes, servers=[{"url": server}] if server else None)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            op.get("responses", {}).pop("422", None)
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc


def _inline(text: str) -> str:
    """``text`` escaped, with `code` spans as <code> (no backtick is shown literally)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _field_need(name: str, field: dict[str, Any], body: dict[str, Any]) -> str:
    if name in body.get("required", []):
        return "required"
    default = field.get("default")
    return "optional" if default in (None, "") else f"optional, default <code>{html.escape(str(default))}</code>"


def docs_page(doc: dict[str, Any], server: str) -> str:
    """The OpenAPI document as a plain HTML page: each operation, its fields and responses, and one curl
    example addressed to ``server`` (the base URL the reader used)."""
    e = html.escape
    parts = [f"<h1>{e(doc['info']['title'])}</h1><p>{e(doc['info'].get('description', ''))}</p>",
             f'<p>Machine-readable: <a href="{PREFIX}/openapi.json">{PREFIX}/openapi.json</a> (OpenAPI '
             f"{e(doc.get('openapi', ''))}).</p>"]
    components = doc.get("components", {}).get("schemas", {})
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{e(method.upper())} {e(path)}</code></h2><p><b>{e(op.get('summary', ''))}</b></p>")
            parts.append("".join(f"<p>{_inline(para)}</p>" for para in op.get("description", "").split("\n\n")))
            parts.append(f"<h3>Example</h3><pre>{e(curl_example(server))}</pre>")
            ref = (op.get("requestBody", {}).get("content", {}).get("multipart/form-data", {})
                   .get("schema", {}).get("$ref", ""))
            body = components.get(ref.rsplit("/", 1)[-1], {})
            if body:
                # A list, not a four-column table: it reads on a phone without squeezing the field names.
                items = "".join(
                    f"<li><code>{e(name)}</code> ({_field_need(name, field, body)}): "
                    f"{_inline(field.get('description', ''))}</li>"
                    for name, field in body.get("properties", {}).items())
                parts.append(f"<h3>Multipart fields</h3><ul>{items}</ul>")
            rows = "".join(f"<tr><td>{e(code)}</td><td>{_inline(r.get('description', ''))}</td></tr>"
                           for code, r in op.get("responses", {}).items())
            parts.append(f"<h3>Responses</h3><table><tr><th>status</th><th>meaning</th></tr>{rows}</table>")
            example = ERROR_EXAMPLE["application/json"]["example"]
            parts.append(f"<h3>A refusal looks like</h3><pre>{e(json.dumps(example, indent=1))}</pre>")
    style = ("body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','DejaVu Sans',sans-serif;"
             "max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#1d1d1f}code,pre{font-family:ui-monospace,"
             "'DejaVu Sans Mono',monospace}pre{background:#f4f4f7;padding:.6rem;white-space:pre-wrap;overflow-wrap:anywhere}"
             # a phone (390 px) reads it without sideways scrolling: long words and URLs break, tables fit
             "h2 code,li{overflow-wrap:anywhere}td{overflow-wrap:break-word}table{border-collapse:collapse;width:100%}"
             "td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{e(doc["info"]["title"])}</title>'
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
