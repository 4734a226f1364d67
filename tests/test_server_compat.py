"""LibreTranslate compatibility: form and JSON bodies, alternatives, format, api_key in the body,
an unmodified LibreTranslate client (libretranslatepy) against a real socket, and /metrics."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from libretranslatepy import LibreTranslateAPI
from prometheus_client.parser import text_string_to_metric_families

from runtime.server import ServerSettings, create_app
from tests.test_server import KEY_A, FakeTranslator, assert_error, body, client_for

FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_form_encoded_body_like_libretranslate() -> None:
    fake = FakeTranslator()
    client = client_for(fake)
    r = client.post("/translate", data={"q": "hello", "source": "en", "target": "de"})
    assert r.status_code == 200 and r.json() == {"translatedText": "<de> HELLO", "truncated": False}
    # Numbers arrive as strings in a form; a repeated q is a batch.
    r = client.post(
        "/translate",
        content=b"q=a&q=b+c&source=en&target=fr&beam_size=2&max_length=9",
        headers=FORM,
    )
    assert r.json()["translatedText"] == ["<fr> A", "<fr> B C"]
    assert fake.calls[-1]["num_beams"] == 2 and fake.calls[-1]["max_length"] == 9
    assert "beam_size" in assert_error(
        client.post("/translate", data={**body(), "beam_size": "lots"}), 400, "invalid_request"
    )
    assert_error(client.post("/translate", data={"q": "x"}), 400, "invalid_request")
    r = client.post("/translate", content=b"q=%FF&source=en&target=de", headers=FORM)
    assert_error(r, 400, "invalid_text")  # invalid UTF-8
    r = client.post("/translate", content=b"q", headers={"content-type": "text/plain"})
    assert_error(r, 415, "unsupported_media_type")


def test_alternatives_in_libretranslate_shape() -> None:
    fake = FakeTranslator()
    client = client_for(fake)
    r = client.post("/translate", json=body("hi", alternatives=2))
    assert r.json() == {
        "translatedText": "<de> HI",
        "alternatives": ["<de> HI*", "<de> HI**"],
        "truncated": False,
    }
    assert fake.calls[-1]["num_beams"] == 3 and fake.calls[-1]["num_hypotheses"] == 3
    r = client.post("/translate", data={**body(["a", "b"]), "alternatives": "1", "beam_size": "4"})
    r = client.post("/translate", json=body(["a", "b"], alternatives=1, beam_size=4))
    assert r.json()["alternatives"] == [["<de> A*"], ["<de> B*"]]
    assert fake.calls[-1]["num_beams"] == 4
    assert_error(client.post("/translate", json=body(alternatives=8)), 400, "invalid_request")
    assert "alternatives" not in client.post("/translate", json=body()).json()


def test_html_is_refused_not_mangled() -> None:
    fake = FakeTranslator()
    r = client_for(fake).post("/translate", json=body("<p>Hi</p>", format="html"))
    assert "format 'html' is not supported" in assert_error(r, 400, "unsupported_format")
    assert fake.calls == []
    ok = client_for(fake).post("/translate", json=body("<p>", format="text"))
    assert ok.status_code == 200


def test_api_key_in_the_body_or_the_header() -> None:
    client = client_for(settings=ServerSettings(api_keys=(KEY_A,), rate_limit=None))
    assert client.post("/translate", json=body(api_key=KEY_A)).status_code == 200
    assert client.post("/translate", data={**body(), "api_key": KEY_A}).status_code == 200
    assert client.post("/translate", json=body(), headers={"X-API-Key": KEY_A}).status_code == 200
    assert_error(client.post("/translate", json=body(api_key="x" * 20)), 403, "invalid_api_key")
    assert_error(client.post("/translate", json=body()), 401, "missing_api_key")
    # The header wins: a wrong header key is refused before the body is read.
    r = client.post("/translate", json=body(api_key=KEY_A), headers={"X-API-Key": "y" * 20})
    assert_error(r, 403, "invalid_api_key")
    # GET with the key in a form body, as libretranslatepy's languages() sends it.
    r = client.request("GET", "/languages", content=f"api_key={KEY_A}", headers=FORM)
    assert r.status_code == 200


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_metrics_count_requests_errors_sentences_and_tokens() -> None:
    client = client_for(settings=ServerSettings(rate_limit=None, max_batch=2))
    client.post("/translate", json=body(["one two", "three"]))
    assert_error(client.post("/translate", json=body(["a"] * 3)), 413, "batch_too_large")
    client.get("/nope")
    assert metric(client, "lingolite_http_requests_total", route="/translate", status="200") == 1
    assert metric(client, "lingolite_http_requests_total", route="/translate", status="413") == 1
    assert metric(client, "lingolite_http_requests_total", route="other", status="404") == 1
    assert metric(client, "lingolite_errors_total", type="batch_too_large") == 1
    assert metric(client, "lingolite_errors_total", type="not_found") == 1
    assert metric(client, "lingolite_sentences_translated_total") == 2
    assert metric(client, "lingolite_tokens_generated_total") == 3  # the fake: one per word
    assert metric(client, "lingolite_queue_depth") == 0
    count = "lingolite_http_request_duration_seconds_count"
    assert metric(client, count, route="/translate") == 2
    # Each app has its own registry: a second server starts from zero.
    assert metric(client_for(), "lingolite_http_requests_total", route="/translate") == 0


def test_metrics_behind_keys_or_off() -> None:
    keyed = client_for(settings=ServerSettings(api_keys=(KEY_A,), rate_limit=None))
    assert_error(keyed.get("/metrics"), 401, "missing_api_key")
    assert keyed.get("/metrics", headers={"X-API-Key": KEY_A}).status_code == 200
    off = client_for(settings=ServerSettings(rate_limit=None, metrics=False))
    assert_error(off.get("/metrics"), 404, "not_found")


def test_rate_limit_still_applies_to_form_requests() -> None:
    client = client_for(settings=ServerSettings(rate_limit="1/minute"))
    assert client.post("/translate", data=body()).status_code == 200
    assert_error(client.post("/translate", data=body()), 429, "rate_limited")


# --- An unmodified LibreTranslate client over a real socket ----------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    app = create_app(FakeTranslator(), ServerSettings(api_keys=(KEY_A,), rate_limit=None))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_libretranslatepy_client_works_unchanged(served: str) -> None:
    client = LibreTranslateAPI(served, api_key=KEY_A)
    assert client.translate("hello there", "en", "de") == "<de> HELLO THERE"
    assert {lang["code"] for lang in client.languages()} == {"de", "en", "fr"}
    with pytest.raises(urllib.error.HTTPError) as bad:
        client.translate("hello", "en", "xx")
    assert bad.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as wrong:
        LibreTranslateAPI(served, api_key="z" * 20).translate("hello", "en", "de")
    assert wrong.value.code == 403


def test_recorded_libretranslate_exchange() -> None:
    """Requests and answers as LibreTranslate's API documentation shows them."""
    client = client_for()
    r = client.post(
        "/translate",
        json={
            "q": "Hello!",
            "source": "en",
            "target": "de",
            "format": "text",
            "alternatives": 3,
            "api_key": "",
        },
    )
    answer = r.json()
    assert isinstance(answer["translatedText"], str) and len(answer["alternatives"]) == 3
    r = client.post("/translate", json={"q": "Hello!", "source": "auto", "target": "de"})
    assert isinstance(r.json()["error"], str) and r.status_code == 400
