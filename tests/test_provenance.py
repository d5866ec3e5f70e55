"""Provenance evidence (``detector.inference.provenance``) on files made here, in code, offline.

Every file is built in the test: PNGs with Stable Diffusion text chunks (AUTOMATIC1111
``parameters``, ComfyUI ``prompt``/``workflow``, ...), JPEGs, PNGs and WebPs with an XMP
``Iptc4xmpExt:DigitalSourceType``, JPEGs with EXIF Software and UserComment, a plain camera-like
JPEG, garbage of many kinds, and C2PA Content Credentials.

C2PA signing works offline: the test makes its own certificate chain with ``cryptography`` (an
EC P-256 root CA and an end-entity certificate for document signing), signs a JPEG (and a PNG)
with ``c2pa-python``'s ES256 signer and no timestamp authority, and reads it back.  Unless the
reader is told to trust the test root, the signature reads as ``Valid`` (intact, signer not on a
trust list: moderate evidence); with ``trust_anchors`` it reads as ``Trusted`` (strong).  The C2PA
tests skip only where the ``c2pa`` package (a native wheel) cannot be imported.
"""

from __future__ import annotations

import datetime
import functools
import io
import json
import statistics
import struct
import time
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile, PngImagePlugin

from detector.inference import provenance
from detector.inference.provenance import (
    DECLARES,
    DIGITAL_SOURCE_TYPES,
    KINDS,
    MAX_XMP_BYTES,
    STRENGTHS,
    VERDICTS,
    Provenance,
    identify_tool,
    read_provenance,
    xmp_values,
)

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = IPTC + "trainedAlgorithmicMedia"
A1111_PARAMETERS = ("portrait of a man, studio light\nNegative prompt: blurry\n"
                    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, "
                    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0")
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}},
                           "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev"}}})
COMFY_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []})


# ------------------------------------------------------------------ building files


def rgb(w: int = 64, h: int = 48) -> Image.Image:
    return Image.new("RGB", (w, h), (120, 90, 60))


def png(texts: dict[str, str] | None = None, *, ztxt: bool = False, itxt: dict[str, str] | None = None,
        img: Image.Image | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value, zip=ztxt)
    for key, value in (itxt or {}).items():
        info.add_itxt(key, value, zip=ztxt)
    out = io.BytesIO()
    (img or rgb()).save(out, "PNG", pnginfo=info)
    return out.getvalue()


def jpeg(exif: Image.Exif | None = None, xmp: str | None = None, img: Image.Image | None = None, **save) -> bytes:
    out = io.BytesIO()
    args = dict(save)
    if exif is not None:
        args["exif"] = exif
    if xmp is not None:
        args["xmp"] = xmp.encode()
    (img or rgb()).save(out, "JPEG", **args)
    return out.getvalue()


def webp(xmp: str) -> bytes:
    out = io.BytesIO()
    rgb().save(out, "WEBP", xmp=xmp.encode())
    return out.getvalue()


def xmp_packet(body: str) -> str:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#" '
            f'xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" {body}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>')


def dst_attribute(uri: str) -> str:
    return xmp_packet(f'Iptc4xmpExt:DigitalSourceType="{uri}">')


def exif_with(**tags: object) -> Image.Exif:
    names = {"Software": 0x0131, "Make": 0x010F, "Model": 0x0110, "DateTime": 0x0132, "ImageDescription": 0x010E}
    exif = Image.Exif()
    for name, value in tags.items():
        exif[names[name]] = value
    return exif


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_raw_chunk(kind: bytes, data: bytes, base: bytes | None = None) -> bytes:
    """``base`` (a PNG) with one more chunk right after IHDR."""
    base = base or png()
    ihdr_end = 8 + 8 + 13 + 4
    return base[:ihdr_end] + png_chunk(kind, data) + base[ihdr_end:]


def camera_jpeg() -> bytes:
    """What a camera writes: make, model, firmware as Software, a date; no generator, no editor."""
    exif = exif_with(Make="Canon", Model="Canon EOS R6", Software="Firmware Version 1.8.1", DateTime="2024:05:01 10:00:00")
    return jpeg(exif, quality=90)


def kinds(p: Provenance) -> list[str]:
    return [f.kind for f in p.findings]


# ------------------------------------------------------------------ generator traces in PNG text chunks


@pytest.mark.parametrize("ztxt", [False, True], ids=["tEXt", "zTXt"])
def test_a1111_parameters_chunk_is_a_moderate_ai_generated_trace(ztxt):
    p = read_provenance(png({"parameters": A1111_PARAMETERS}, ztxt=ztxt), "gen.png")
    assert p.verdict == "ai-generated-declared"
    assert p.strength == "moderate"
    [finding] = p.findings
    assert (finding.kind, finding.field, finding.strength) == ("generator-metadata", "PNG text 'parameters'", "moderate")
    assert "Steps: 30" in finding.value and "AUTOMATIC1111" in finding.tool
    assert "strong evidence of AI content if genuine" in finding.meaning
    assert "generative AI" in p.summary and "added or copied by anyone" in p.summary


def test_comfyui_prompt_and_workflow_chunks_are_both_reported():
    p = read_provenance(png({"prompt": COMFY_PROMPT, "workflow": COMFY_WORKFLOW}))
    assert p.verdict == "ai-generated-declared"
    assert {f.field for f in p.findings} == {"PNG text 'prompt'", "PNG text 'workflow'"}
    assert {f.tool for f in p.findings} == {"ComfyUI"}
    assert all(f.kind == "generator-metadata" and f.strength == "moderate" for f in p.findings)


@pytest.mark.parametrize(("key", "text", "tool"), [
    ("invokeai_metadata", '{"positive_prompt": "a cat", "steps": 30}', "InvokeAI"),
    ("Comment", '{"prompt": "a cat", "steps": 28, "sampler": "k_euler", "uc": "lowres", "n_samples": 1}', "NovelAI"),
    ("fooocus_scheme", "fooocus", "Fooocus"),
])
def test_other_generators_text_chunks(key, text, tool):
    p = read_provenance(png({key: text}))
    assert p.verdict == "ai-generated-declared"
    assert [f.tool for f in p.findings] == [tool]


def test_a_generator_keyword_with_unrelated_text_is_not_a_trace():
    # ComfyUI's "prompt" holds its node graph; a plain-English "prompt" is not it, a "Comment" is just a comment.
    assert read_provenance(png({"prompt": "say cheese", "Comment": "holiday 2023"})).findings == []


def test_novelai_software_chunk_names_the_generator():
    p = read_provenance(png({"Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52"}))
    assert p.verdict == "ai-generated-declared"
    assert {(f.kind, f.field, f.tool) for f in p.findings} == {
        ("software-tag", "PNG text 'Software'", "NovelAI"), ("software-tag", "PNG text 'Source'", "Stable Diffusion")}


def test_settings_in_an_itxt_chunk_under_another_name_are_found():
    p = read_provenance(png(itxt={"Description": A1111_PARAMETERS}, ztxt=True))
    assert [(f.kind, f.field) for f in p.findings] == [("generator-metadata", "PNG text 'Description'")]
    assert "sd_xl_base_1.0" in p.findings[0].meaning  # the model named in the settings


# ------------------------------------------------------------------ IPTC / XMP DigitalSourceType


def test_jpeg_xmp_trained_algorithmic_media_is_a_moderate_ai_declaration():
    p = read_provenance(jpeg(xmp=dst_attribute(TRAINED)), "photo.jpg")
    assert p.verdict == "ai-generated-declared"
    [finding] = p.findings
    assert (finding.kind, finding.strength, finding.value) == ("iptc-digital-source-type", "moderate", TRAINED)
    assert "generative AI" in finding.meaning
    assert "Iptc4xmpExt:DigitalSourceType" in p.summary


@pytest.mark.parametrize("form", ["element", "resource", "png-itxt", "png-itxt-zip", "webp"])
def test_digital_source_type_in_every_xmp_form_and_container(form):
    element = xmp_packet(f"><Iptc4xmpExt:DigitalSourceType>{TRAINED}</Iptc4xmpExt:DigitalSourceType>")
    data = {
        "element": lambda: jpeg(xmp=element),
        "resource": lambda: jpeg(xmp=xmp_packet(f'><Iptc4xmpExt:DigitalSourceType rdf:resource="{TRAINED}"/>')),
        "png-itxt": lambda: png(itxt={"XML:com.adobe.xmp": element}),
        "png-itxt-zip": lambda: png(itxt={"XML:com.adobe.xmp": element}, ztxt=True),
        "webp": lambda: webp(dst_attribute(TRAINED)),
    }[form]()
    p = read_provenance(data)
    assert [(f.kind, f.value) for f in p.findings] == [("iptc-digital-source-type", TRAINED)]


@pytest.mark.parametrize(("code", "verdict", "strength"), [
    ("compositeWithTrainedAlgorithmicMedia", "ai-edited-declared", "moderate"),
    ("algorithmicMedia", "edited-declared", "weak"),
    ("humanEdits", "edited-declared", "weak"),
    ("digitalCapture", "camera-or-unknown-declared", "weak"),
    ("somethingNew", "camera-or-unknown-declared", "weak"),
])
def test_each_source_type_code_maps_to_its_declaration(code, verdict, strength):
    p = read_provenance(jpeg(xmp=dst_attribute(IPTC + code)))
    assert (p.verdict, p.strength) == (verdict, strength)
    assert p.findings[0].value.endswith(code)


def test_every_known_source_type_has_a_declaration_and_a_meaning():
    assert len(DIGITAL_SOURCE_TYPES) == 20  # the IPTC vocabulary as of 2024-10, retired codes included
    for declares, meaning in DIGITAL_SOURCE_TYPES.values():
        assert declares in DECLARES and meaning.startswith("the image")


def test_a_declared_camera_capture_is_not_taken_as_proof():
    p = read_provenance(jpeg(xmp=dst_attribute(IPTC + "digitalCapture")))
    assert "does not show the image is genuine" in p.summary


def test_extended_xmp_in_jpeg_is_read():
    # XMP over 64 KB goes to "extended XMP" APP1 segments: GUID, full length, offset, then the part.
    part = dst_attribute(TRAINED).encode()
    payload = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 32 + struct.pack(">II", len(part), 0) + part
    base = jpeg()
    data = base[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + base[2:]
    assert [f.value for f in read_provenance(data).findings] == [TRAINED]


def test_xmp_values_reads_attributes_elements_and_resources_but_not_closing_tags():
    xmp = ('<a:CreatorTool>GIMP 2.10</a:CreatorTool>tail<b:CreatorTool rdf:resource="x&amp;y"/> '
           'c:CreatorTool = "Krita"')
    assert xmp_values(xmp, "CreatorTool") == ["GIMP 2.10", "x&y", "Krita"]


def test_xmp_creator_tool_and_history_name_the_tools():
    body = ('xmp:CreatorTool="Adobe Firefly"><xmpMM:History><rdf:Seq><rdf:li stEvt:action="saved" '
            'stEvt:softwareAgent="Adobe Photoshop 25.0 (Windows)"/></rdf:Seq></xmpMM:History>')
    p = read_provenance(jpeg(xmp=xmp_packet(body)))
    assert p.verdict == "ai-generated-declared"
    assert [(f.field, f.tool, f.strength) for f in p.findings] == [
        ("XMP xmp:CreatorTool", "Adobe Firefly", "moderate"),
        ("XMP history softwareAgent", "Photoshop", "weak")]


def test_a_pointer_to_remote_content_credentials_is_reported_not_fetched():
    p = read_provenance(jpeg(xmp=xmp_packet('xmlns:dcterms="http://purl.org/dc/terms/" '
                                            'dcterms:provenance="https://cai-manifests.example/abc.c2pa">')))
    [finding] = p.findings
    assert (finding.kind, finding.field, finding.strength) == ("c2pa", "XMP dcterms:provenance", "weak")
    assert "did not fetch" in finding.meaning and "stored online" in p.summary


# ------------------------------------------------------------------ EXIF


def test_jpeg_exif_software_photoshop_is_a_weak_editing_trace():
    p = read_provenance(jpeg(exif_with(Software="Adobe Photoshop 25.0")), "edit.jpg")
    assert (p.verdict, p.strength) == ("edited-declared", "weak")
    [finding] = p.findings
    assert (finding.kind, finding.field, finding.value, finding.tool) == (
        "software-tag", "EXIF Software", "Adobe Photoshop 25.0", "Photoshop")
    assert "does not make an image fake" in finding.meaning
    assert "does not make it fake" in p.summary


@pytest.mark.parametrize(("software", "category", "name"), [
    ("Adobe Photoshop Lightroom Classic 13.0 (Windows)", "editor", "Lightroom"),
    ("GIMP 2.10.36", "editor", "GIMP"),
    ("Midjourney v6", "generator", "Midjourney"),
    ("DALL\u00b7E 3", "generator", "DALL-E"),
    ("FLUX.1 [dev]", "generator", "FLUX"),
    ("Google Imagen 3", "generator", "Google Imagen"),
    ("FaceApp 11.2", "ai-editor", "FaceApp"),
    ("Snapseed", "editor", "Snapseed"),
])
def test_identify_tool(software, category, name):
    assert identify_tool(software) == (category, name)


@pytest.mark.parametrize("software", ["Firmware Version 1.8.1", "Ver.1.00", "17.4.1", "HDR+ 1.0.641377693z",
                                      "ImageNet preprocessor", "Photos 9.0"])
def test_camera_firmware_and_unrelated_names_are_not_tools(software):
    assert identify_tool(software) is None


def test_a1111_settings_in_jpeg_exif_user_comment():
    # AUTOMATIC1111 writes its settings for JPEG and WebP as a "UNICODE" EXIF UserComment (UTF-16 big-endian).
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16-be")
    p = read_provenance(jpeg(exif))
    assert p.verdict == "ai-generated-declared"
    assert [(f.kind, f.field) for f in p.findings] == [("generator-metadata", "EXIF UserComment")]


def test_plain_camera_jpeg_has_no_findings_and_says_absence_proves_nothing():
    p = read_provenance(camera_jpeg(), "IMG_0001.JPG")
    assert p.findings == [] and p.c2pa is None
    assert (p.verdict, p.strength) == ("none", "none")
    assert "proves nothing" in p.summary and "strip" in p.summary


# ------------------------------------------------------------------ result shape and vocabulary


def test_to_dict_is_json_and_uses_the_documented_vocabulary():
    samples = [png({"parameters": A1111_PARAMETERS}), jpeg(xmp=dst_attribute(TRAINED)), camera_jpeg(),
               jpeg(exif_with(Software="GIMP 2.10"))]
    for data in samples:
        p = read_provenance(data)
        d = json.loads(json.dumps(p.to_dict()))
        assert set(d) == {"verdict", "strength", "summary", "findings", "c2pa"}
        assert d["verdict"] in VERDICTS and d["strength"] in (*STRENGTHS, "none")
        assert 1 <= d["summary"].count(". ") + 1 <= 3 and d["summary"].endswith(".")
        for f in d["findings"]:
            assert set(f) == {"kind", "strength", "field", "value", "meaning", "declares", "tool"}
            assert f["kind"] in KINDS and f["strength"] in STRENGTHS and f["declares"] in DECLARES


def test_verdict_is_the_highest_declaration_and_findings_come_strongest_first():
    exif = exif_with(Software="Adobe Photoshop 25.0")
    p = read_provenance(jpeg(exif, xmp=dst_attribute(IPTC + "compositeWithTrainedAlgorithmicMedia")))
    assert p.verdict == "ai-edited-declared"
    assert [f.strength for f in p.findings] == ["moderate", "weak"]


def test_long_values_are_clipped():
    p = read_provenance(png({"parameters": A1111_PARAMETERS + ", extra" * 500}))
    assert len(p.findings[0].value) <= provenance.MAX_VALUE_CHARS


# ------------------------------------------------------------------ hostile input


def _garbage() -> dict[str, object]:
    good_jpeg, good_png = jpeg(exif_with(Software="GIMP"), xmp=dst_attribute(TRAINED)), png({"parameters": "Steps: 1"})
    return {
        "empty": b"",
        "text": b"hello, this is not an image\n" * 10,
        "random": bytes(range(256)) * 40,
        "jpeg_soi_only": b"\xff\xd8\xff",
        "jpeg_truncated": good_jpeg[: len(good_jpeg) // 3],
        "jpeg_bad_length": b"\xff\xd8\xff\xe1\x00\x01Exif",
        "jpeg_huge_length": b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00II*\x00",
        "jpeg_fill_bytes": b"\xff\xd8" + b"\xff" * 100_000,
        "jpeg_broken_exif": b"\xff\xd8\xff\xe1\x00\x20Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 18,
        "png_signature_only": b"\x89PNG\r\n\x1a\n",
        "png_truncated": good_png[: len(good_png) // 2],
        "png_huge_chunk_length": b"\x89PNG\r\n\x1a\n\xff\xff\xff\xfftEXtparameters\x00Steps: 1",
        "png_bad_ztxt": png_with_raw_chunk(b"zTXt", b"parameters\x00\x00not zlib at all"),
        "png_bad_itxt": png_with_raw_chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x01\x00"),
        "png_bad_exif": png_with_raw_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff"),
        "webp_truncated": b"RIFF\xff\xff\xff\xffWEBPXMP \xff\xff\xff\xff<x:xmpmeta",
        "xmp_unterminated": b"GIF89a<x:xmpmeta Iptc4xmpExt:DigitalSourceType=\"" + b"a" * 5000,
        "tiff_broken": b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 64,
        "fake_jumbf_box": b"GIF89a\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdc2pa" + b"\x00" * 64,
        "jumbf_not_c2pa": b"GIF89a\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdjpxt" + b"\x00" * 64,
        "utf16_xmp": b"GIF89a" + "<x:xmpmeta>\u0000\ud7ff</x:xmpmeta>".encode("utf-16"),
        "bytearray": bytearray(good_png),
        "memoryview": memoryview(good_jpeg),
        "none": None,
        "str": "not bytes",
        "int": 10**12,  # bytes(int) would allocate that many zero bytes: must be refused, not converted
    }


@pytest.mark.parametrize(("name", "data"), list(_garbage().items()))
def test_garbage_never_raises(name, data):
    p = read_provenance(data, "upload.jpg")  # type: ignore[arg-type]
    assert isinstance(p, Provenance) and p.verdict in VERDICTS and p.summary
    json.dumps(p.to_dict())
    if name in ("empty", "text", "random", "none", "str", "int", "png_signature_only", "jumbf_not_c2pa"):
        assert p.findings == [] and "proves nothing" in p.summary


def test_the_project_hostile_upload_matrix_never_raises():
    from bench.hostile_inputs import CASES

    for case in CASES:
        start = time.perf_counter()
        p = read_provenance(case.data, case.filename)
        assert time.perf_counter() - start < 0.5, case.name
        assert p.verdict in VERDICTS, case.name


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    seeds = [png({"parameters": A1111_PARAMETERS, "prompt": COMFY_PROMPT}),
             jpeg(exif_with(Software="Adobe Photoshop 25.0"), xmp=dst_attribute(TRAINED)),
             webp(dst_attribute(TRAINED)), png(itxt={"XML:com.adobe.xmp": dst_attribute(TRAINED)}, ztxt=True)]
    if _c2pa_available():
        seeds.append(signed(jpeg()))
    return tuple(seeds)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from(["x.jpg", "x.png", "x.webp", None]))
def test_fuzz_random_bytes(data, filename):
    p = read_provenance(data, filename)
    assert p.verdict in VERDICTS
    json.dumps(p.to_dict())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_metadata_files(data):
    seed = bytearray(data.draw(st.sampled_from(_seeds())))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(seed) - 1))
        seed[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(seed)))
    p = read_provenance(bytes(seed[:cut]))
    assert p.verdict in VERDICTS
    json.dumps(p.to_dict())


def test_huge_xmp_is_read_only_up_to_the_cap():
    filler = " " * (4 * MAX_XMP_BYTES)
    early = png(itxt={"XML:com.adobe.xmp": dst_attribute(TRAINED) + filler}, ztxt=True)
    late = png(itxt={"XML:com.adobe.xmp": filler + dst_attribute(TRAINED)}, ztxt=True)
    start = time.perf_counter()
    assert read_provenance(early).verdict == "ai-generated-declared"
    assert read_provenance(late).findings == []  # past the cap: not read, by design
    assert time.perf_counter() - start < 1.0


def test_decompression_bomb_in_a_text_chunk_is_bounded():
    bomb = zlib.compress(b"Steps: 1, Sampler: x " + b"\x00" * (32 << 20))  # 32 MB of text in 32 KB
    data = png_with_raw_chunk(b"zTXt", b"parameters\x00\x00" + bomb)
    start = time.perf_counter()
    p = read_provenance(data)
    assert time.perf_counter() - start < 1.0
    assert p.verdict == "ai-generated-declared"


def test_pathological_xmp_does_not_backtrack():
    # Many property names with no end of tag, a long run of word characters, unterminated values.
    xmp = ("<x:xmpmeta>" + ":DigitalSourceType " * 50_000 + "a" * 200_000 + ' :CreatorTool="' + "b" * 200_000)
    start = time.perf_counter()
    read_provenance(b"GIF89a" + xmp.encode())
    assert time.perf_counter() - start < 1.0


def test_many_tiny_chunks_and_segments_are_bounded():
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    many_idat = b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"IDAT", b"") * 200_000
    many_texts = b"\x89PNG\r\n\x1a\n" + ihdr + png_chunk(b"tEXt", b"Software\x00GIMP 2.10") * 60_000
    many_segments = b"\xff\xd8" + b"\xff\xfe\x00\x02" * 200_000  # empty JPEG comments
    for data in (many_idat, many_texts, many_segments):
        start = time.perf_counter()
        read_provenance(data)
        assert time.perf_counter() - start < 0.5
    assert [f.tool for f in read_provenance(many_texts).findings] == ["GIMP"]  # the first chunks are still read


def test_metadata_only_no_pixels_are_decoded(monkeypatch):
    from bench.hostile_inputs import png_bomb

    calls: list[str] = []
    monkeypatch.setattr(Image, "open", lambda *a, **k: calls.append("open"))
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: calls.append("load"))
    # A 30000 x 30000 PNG header: decoding it would need 2.7 GB; its text chunk must still be read.
    bomb = png_with_raw_chunk(b"tEXt", b"parameters\x00" + A1111_PARAMETERS.encode(), base=png_bomb())
    results = [read_provenance(d) for d in (bomb, jpeg(exif_with(Software="GIMP 2.10"), xmp=dst_attribute(TRAINED)))]
    assert calls == []
    assert [r.verdict for r in results] == ["ai-generated-declared", "ai-generated-declared"]


def test_speed_on_a_normal_camera_photo():
    """12 MP camera-like JPEG with EXIF and XMP: well under 20 ms (about 0.1 ms measured)."""
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    data = jpeg(exif_with(Make="Canon", Model="EOS R6", Software="Firmware 1.8.1"),
                xmp=dst_attribute(IPTC + "digitalCapture"), img=noise, quality=85)
    assert len(data) > 1_000_000
    times = []
    for _ in range(50):
        start = time.perf_counter()
        read_provenance(data)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.020


# ------------------------------------------------------------------ C2PA Content Credentials


def _c2pa_available() -> bool:
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


requires_c2pa = pytest.mark.skipif(not _c2pa_available(), reason="c2pa-python (a native wheel) cannot be imported")


@functools.cache
def credentials() -> tuple[bytes, bytes, str]:
    """(certificate chain PEM, private key PEM, root CA PEM): a throwaway EC P-256 CA and signer."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fdet test suite")])

    def usage(**on: bool) -> x509.KeyUsage:
        flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                               "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"), False)
        return x509.KeyUsage(**{**flags, **on})

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject: str, issuer: str, public_key, ca: bool) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
                .public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    root = cert("fdet Test Root CA", "fdet Test Root CA", ca_key.public_key(), True) \
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True).sign(ca_key, hashes.SHA256())
    leaf = (cert("fdet Test Signer", "fdet Test Root CA", key.public_key(), False)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + root.public_bytes(pem)
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, key_pem, root.public_bytes(pem).decode()


def created(source_type: str = TRAINED, agent: str = "Test Generator 1.0") -> dict:
    return {"action": "c2pa.created", "digitalSourceType": source_type, "softwareAgent": {"name": agent}}


def signed(asset: bytes, actions: list[dict] | None = None, mime: str = "image/jpeg", tool: str = "fdet-tests") -> bytes:
    """``asset`` with Content Credentials signed offline by the test signer (ES256, no timestamp authority)."""
    import c2pa

    chain, key_pem, _ = credentials()
    manifest = {"claim_generator_info": [{"name": tool, "version": "1.0"}], "title": "test image",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": actions or [created()]}}]}
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}},
                                      "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key_pem, None))
    out = io.BytesIO()
    with c2pa.Builder.from_json(json.dumps(manifest), context=context) as builder:
        builder.sign(signer, mime, io.BytesIO(asset), out)
    return out.getvalue()


@requires_c2pa
def test_signed_ai_jpeg_reads_back_with_signer_tool_actions_and_validation():
    p = read_provenance(signed(jpeg()), "credentials.jpg")
    assert p.verdict == "ai-generated-declared"
    [finding] = p.findings
    assert (finding.kind, finding.strength, finding.field) == ("c2pa", "moderate", "C2PA manifest")
    c = p.c2pa
    assert c is not None
    assert (c["signer"], c["issuer"], c["claim_generator"]) == ("fdet Test Signer", "fdet test suite", "fdet-tests 1.0")
    assert c["actions"] == [{"action": "c2pa.created", "digital_source_type": TRAINED,
                             "software_agent": "Test Generator 1.0"}]
    assert c["ai_declared"] is True
    # Intact, but the throwaway root is on no trust list: the signer cannot be confirmed.
    assert c["validation_state"] == "Valid" and "signingCredential.untrusted" in c["validation_codes"]
    assert "fdet Test Signer" in p.summary and "cannot be confirmed" in p.summary
    json.dumps(p.to_dict())


@requires_c2pa
def test_signed_jpeg_with_a_trusted_root_is_strong_evidence():
    p = read_provenance(signed(jpeg()), trust_anchors=credentials()[2])
    assert (p.verdict, p.strength) == ("ai-generated-declared", "strong")
    assert p.c2pa["validation_state"] == "Trusted"
    assert "strong evidence" in p.summary


@requires_c2pa
def test_trust_anchors_from_the_environment(tmp_path, monkeypatch):
    anchors = tmp_path / "anchors.pem"
    anchors.write_text(credentials()[2])
    monkeypatch.setenv(provenance.TRUST_ANCHORS_ENV, str(anchors))
    assert read_provenance(signed(jpeg())).c2pa["validation_state"] == "Trusted"


@requires_c2pa
def test_tampered_pixels_make_the_credentials_invalid_and_weak():
    data = bytearray(signed(jpeg(), [created(IPTC + "digitalCapture", "Camera")]))
    data[-10] ^= 0xFF  # inside the image data, after signing
    p = read_provenance(bytes(data), trust_anchors=credentials()[2])
    assert p.c2pa["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in p.c2pa["validation_codes"]
    assert p.strength == "weak" and "do not validate" in p.summary


@requires_c2pa
@pytest.mark.parametrize(("actions", "verdict"), [
    ([created(IPTC + "digitalCapture", "Camera")], "camera-or-unknown-declared"),
    ([created(IPTC + "digitalCapture", "Camera"), {"action": "c2pa.color_adjustments"}], "edited-declared"),
    ([created(IPTC + "digitalCapture", "Camera"),
      {"action": "c2pa.edited", "digitalSourceType": IPTC + "compositeWithTrainedAlgorithmicMedia"}],
     "ai-edited-declared"),
    ([created(IPTC + "digitalCapture", "Camera"), {"action": "c2pa.edited", "softwareAgent": "Adobe Firefly"}],
     "ai-edited-declared"),
])
def test_manifest_actions_decide_what_is_declared(actions, verdict):
    p = read_provenance(signed(jpeg(), actions), trust_anchors=credentials()[2])
    assert p.verdict == verdict
    assert p.strength == "strong"


@requires_c2pa
def test_signed_png_is_read_too():
    p = read_provenance(signed(png(), mime="image/png"), "credentials.png")
    assert p.verdict == "ai-generated-declared" and p.c2pa["validation_state"] == "Valid"


@requires_c2pa
def test_unsigned_files_yield_no_c2pa_finding():
    for data in (jpeg(), png(), camera_jpeg(), webp(dst_attribute(TRAINED))):
        p = read_provenance(data)
        assert p.c2pa is None and "c2pa" not in kinds(p)


@requires_c2pa
def test_corrupt_manifest_does_not_crash_and_is_reported_as_unreadable():
    good = signed(jpeg())
    at = good.index(b"jumb") + 64
    broken = good[:at] + bytes(len(good) - at - 400) + good[-400:]  # zero most of the manifest store
    # An APP11 JUMBF box labelled "c2pa" whose contents are noise.
    box = b"JP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x40jumb\x00\x00\x00\x1ejumdc2pa\x00" + b"\x5a" * 38
    garbage_box = jpeg()[:2] + b"\xff\xeb" + struct.pack(">H", len(box) + 2) + box + jpeg()[2:]
    for data in (broken, garbage_box):
        p = read_provenance(data)
        assert p.c2pa is not None and p.c2pa["validation_state"] in ("Unreadable", "Invalid")
        [finding] = [f for f in p.findings if f.kind == "c2pa"]
        assert finding.strength == "weak"
        assert "cannot be read" in p.summary or "do not validate" in p.summary


def test_without_the_c2pa_package_credentials_are_reported_as_not_checked(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "c2pa", None)  # makes "import c2pa" raise ImportError
    box = b"JP\x00\x01\x00\x00\x00\x01\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdc2pa\x00" + b"\x00" * 8
    data = jpeg()[:2] + b"\xff\xeb" + struct.pack(">H", len(box) + 2) + box + jpeg()[2:]
    p = read_provenance(data)
    assert p.c2pa == {"validation_state": "NotChecked"}
    assert [f.kind for f in p.findings] == ["c2pa"] and "could not be checked" in p.summary

