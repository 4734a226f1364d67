"""The translation server: endpoints, errors, keys, limits, timeouts, concurrency, fuzzing."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lingolite.search import SearchConfig, TokenIds
from lingolite.segment import Segment
from lingolite.tokenizer import TokenId, Tokenizer
from runtime.onnx_backend import OnnxBackend
from runtime.server import (
    API_KEYS_ENV,
    ServerConfigError,
    ServerSettings,
    build_parser,
    create_app,
    is_loopback,
    load_api_keys,
    load_translator,
    main,
    match_api_key,
    settings_from_args,
    uvicorn_options,
)
from runtime.translator import Plan, ScoredHyp, Translator, Unit, UnitResult

LANGS = ["de", "en", "fr"]
KEY_A, KEY_B = "a" * 20, "b" * 20
NO_RATE_LIMIT = ServerSettings(rate_limit=None)


# The fake's language tags: ids above Unicode, first in a source like the model's <2xx> tokens.
TAG_BASE = 0x110000


class FakeTranslator:
    """Upper-cases and tags each text (one unit per text); records every request it plans
    (``calls``) and every batch it decodes (``batches``: the texts of each), and counts how many
    batches run at once."""

    languages = LANGS
    # Like the shipped models: en<->de and en<->fr, but not de<->fr.
    directions = ("en-de", "de-en", "en-fr", "fr-en")
    max_tgt_len = 64

    def __init__(self, delay_s: float = 0.0, fail: Exception | None = None) -> None:
        self.delay_s, self.fail = delay_s, fail
        self.calls: list[dict[str, Any]] = []
        self.batches: list[list[str]] = []
        self.running = self.max_running = 0
        self._lock = threading.Lock()

    def plan(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        num_beams: int = 1,
        num_hypotheses: int = 1,
        max_length: int | None = None,
    ) -> Plan:
        with self._lock:
            self.calls.append(
                {
                    "texts": list(texts),
                    "src": src,
                    "tgt": tgt,
                    "num_beams": num_beams,
                    "num_hypotheses": num_hypotheses,
                    "max_length": max_length,
                }
            )
        if max_length is not None and max_length > self.max_tgt_len:
            raise ValueError(f"max_length must be in [1, {self.max_tgt_len}], got {max_length}")
        units = tuple(
            Unit(i, 0, [TokenId(TAG_BASE + LANGS.index(tgt)), *map(TokenId, map(ord, t))])
            for i, t in enumerate(texts)
        )
        config = SearchConfig(max_length=max_length or self.max_tgt_len, num_beams=num_beams)
        segmented = tuple((Segment(t, True),) for t in texts)
        return Plan(segmented, units, tuple(range(len(units))), config, num_hypotheses)

    def decode_units(
        self,
        sources: Sequence[TokenIds],
        config: SearchConfig,
        *,
        num_hypotheses: int = 1,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[UnitResult]:
        texts = ["".join(map(chr, ids[1:])) for ids in sources]
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            self.batches.append(texts)
        try:
            time.sleep(self.delay_s)
            if self.fail is not None:
                raise self.fail
            # A text containing "LONG" stands for one whose sentence hit the length limit.
            # Alternative j tags the text with j + 1 stars.
            out = []
            for ids, text in zip(sources, texts, strict=True):
                tagged = f"<{LANGS[ids[0] - TAG_BASE]}> {text.upper()}"
                hyps = tuple(
                    ScoredHyp(tagged + "*" * j, -1.0 - j, len(text.split()))
                    for j in range(num_hypotheses)
                )
                out.append(UnitResult(hyps, "LONG" in text))
            return out
        finally:
            with self._lock:
                self.running -= 1


def client_for(
    translator: FakeTranslator | None = None, settings: ServerSettings = NO_RATE_LIMIT
) -> TestClient:
    return TestClient(create_app(translator or FakeTranslator(), settings))


def body(q: str | list[str] = "hello", **extra: Any) -> dict[str, Any]:
    return {"q": q, "source": "en", "target": "de", **extra}


class _Response(Protocol):  # httpx.Response, or httpx2.Response from Starlette's TestClient
    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


def assert_error(response: _Response, status: int, code: str) -> str:
    """LibreTranslate's error shape, ``{"error": message}``, plus our ``code``."""
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "code"} and answer["code"] == code
    assert isinstance(answer["error"], str) and answer["error"]
    return str(answer["error"])


# --- Endpoints -------------------------------------------------------------------------------


def test_translate_one_text_and_a_batch() -> None:
    fake = FakeTranslator()
    client = client_for(fake)
    r = client.post("/translate", json=body("hello"))
    assert r.status_code == 200
    assert r.json() == {"translatedText": "<de> HELLO", "truncated": False}
    r = client.post("/translate", json=body(["a b", "c LONG"], beam_size=3, max_length=20))
    assert r.json() == {"translatedText": ["<de> A B", "<de> C LONG"], "truncated": [False, True]}
    assert fake.calls[-1] == {
        "texts": ["a b", "c LONG"],
        "src": "en",
        "tgt": "de",
        "num_beams": 3,
        "num_hypotheses": 1,
        "max_length": 20,
    }
    client.post("/translate", json=body("x", num_beams=2))  # the alias
    assert fake.calls[-1]["num_beams"] == 2


def test_languages_health_and_schema() -> None:
    client = client_for()
    assert client.get("/languages").json() == [
        {"code": "de", "name": "German", "targets": ["en"]},
        {"code": "en", "name": "English", "targets": ["de", "fr"]},
        {"code": "fr", "name": "French", "targets": ["en"]},
    ]
    assert client.get("/health").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert {"/translate", "/languages", "/health"} <= spec["paths"].keys()
    assert_error(client.get("/docs"), 404, "not_found")  # no CDN-backed docs page


# --- Errors ----------------------------------------------------------------------------------


def test_unknown_language_names_it_and_the_supported_ones() -> None:
    client = client_for()
    msg = assert_error(
        client.post("/translate", json=body(source="xx", target="yy")), 400, "unsupported_language"
    )
    assert "'xx'" in msg and "'yy'" in msg and "de, en, fr" in msg
    assert_error(client.post("/translate", json=body(target="en")), 400, "unsupported_language")


def test_untrained_direction_is_refused_naming_the_trained_ones() -> None:
    fake = FakeTranslator()
    client = client_for(fake)
    r = client.post("/translate", json={"q": "Bonjour.", "source": "fr", "target": "de"})
    msg = assert_error(r, 400, "unsupported_language")
    assert "fr-de was not trained" in msg and "en-de, de-en, en-fr, fr-en" in msg
    assert fake.calls == []


@pytest.mark.parametrize(
    "payload",
    [
        {"source": "en", "target": "de"},  # no q
        {"q": 5, "source": "en", "target": "de"},
        {"q": [], "source": "en", "target": "de"},
        {"q": ["a", 3], "source": "en", "target": "de"},
        body(beam_size=0),
        body(beam_size=9),
        body(beam_size="2"),
        body(max_length=0),
        body(source="x" * 100),
        ["not", "an", "object"],
    ],
)
def test_invalid_bodies_are_structured_400(payload: Any) -> None:
    assert_error(client_for().post("/translate", json=payload), 400, "invalid_request")


def test_malformed_json_and_wrong_paths_are_structured() -> None:
    client = client_for()
    r = client.post(
        "/translate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(r, 400, "invalid_request")
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/translate"), 405, "method_not_allowed")


def test_translator_rejection_is_400_and_a_bug_is_a_structured_500() -> None:
    r = client_for().post("/translate", json=body(max_length=10_000))
    assert "max_length" in assert_error(r, 400, "invalid_request")
    app = create_app(FakeTranslator(fail=RuntimeError("boom")), NO_RATE_LIMIT)
    r = TestClient(app, raise_server_exceptions=False).post("/translate", json=body())
    msg = assert_error(r, 500, "internal_error")
    assert "boom" not in msg  # internals stay in the log


# --- API keys --------------------------------------------------------------------------------


def test_api_keys_401_403_200() -> None:
    client = client_for(settings=ServerSettings(api_keys=(KEY_A, KEY_B), rate_limit=None))
    assert_error(client.post("/translate", json=body()), 401, "missing_api_key")
    assert_error(client.get("/languages"), 401, "missing_api_key")
    r = client.post("/translate", json=body(), headers={"X-API-Key": KEY_A[:-1] + "x"})
    assert_error(r, 403, "invalid_api_key")
    # Bad JSON from a client without a key is refused for the key, before the body is parsed.
    assert_error(client.post("/translate", content=b"{"), 401, "missing_api_key")
    for key in (KEY_A, KEY_B):
        assert client.post("/translate", json=body(), headers={"X-API-Key": key}).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_match_api_key_compares_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = (KEY_A, KEY_B, "c" * 20)
    assert match_api_key(KEY_A, keys) == 0
    assert len(compared) == 3  # no early exit on a match
    assert match_api_key("nope", keys) is None and match_api_key(None, keys) is None


def test_load_api_keys(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# comment\n\n{KEY_A}\n  {KEY_B}  \n")
    assert load_api_keys(keys_file, f" {KEY_B},{'c' * 20} ,") == (KEY_A, KEY_B, "c" * 20)
    keys_file.write_text("# only a comment\n")
    with pytest.raises(ServerConfigError, match="holds no keys"):
        load_api_keys(keys_file, None)
    with pytest.raises(ServerConfigError, match="cannot read"):
        load_api_keys(tmp_path / "missing", None)


# --- Rate limit and size limits --------------------------------------------------------------


def test_rate_limit_per_key_gives_structured_429() -> None:
    client = client_for(settings=ServerSettings(api_keys=(KEY_A, KEY_B), rate_limit="2/minute"))
    a, b = {"X-API-Key": KEY_A}, {"X-API-Key": KEY_B}
    assert [client.post("/translate", json=body(), headers=a).status_code for _ in range(2)] == [
        200,
        200,
    ]
    r = client.post("/translate", json=body(), headers=a)
    assert "2 per 1 minute" in assert_error(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "60"
    assert client.post("/translate", json=body(), headers=b).status_code == 200  # own bucket
    # Wrong keys share their client address's bucket: guessing keys is rate limited too.
    wrong = [client.get("/languages", headers={"X-API-Key": f"guess{i:016d}"}) for i in range(3)]
    assert [w.status_code for w in wrong] == [403, 403, 429]
    assert all(client.get("/health").status_code == 200 for _ in range(3))  # exempt


def test_body_limit_counts_received_bytes() -> None:
    fake = FakeTranslator()
    client = client_for(fake, ServerSettings(rate_limit=None, max_body_bytes=100))
    big = body("x" * 200)
    assert_error(client.post("/translate", json=big), 413, "body_too_large")

    def chunks() -> Iterator[bytes]:  # streamed: no Content-Length at all
        yield b'{"q": "'
        for _ in range(10):
            yield b"x" * 20
        yield b'", "source": "en", "target": "de"}'

    assert_error(client.post("/translate", content=chunks()), 413, "body_too_large")
    lying = {"content-length": "10", "content-type": "application/json"}
    r = client.post(
        "/translate", content=httpx.Request("POST", "/", json=big).content, headers=lying
    )
    assert_error(r, 413, "body_too_large")
    assert fake.calls == []
    assert client.post("/translate", json=body("x" * 30)).status_code == 200


@pytest.mark.parametrize("declared", [b"abc", b"-1", "\u00b2".encode("latin-1")])
def test_invalid_content_length_is_400(declared: bytes) -> None:
    headers = {b"content-length": declared, b"content-type": b"application/json"}
    r = client_for().post("/translate", content=b"{}", headers=headers)
    assert_error(r, 400, "invalid_request")


def test_char_and_batch_limits() -> None:
    client = client_for(settings=ServerSettings(rate_limit=None, max_chars=10, max_batch=3))
    msg = assert_error(client.post("/translate", json=body(["ok", "y" * 11])), 413, "text_too_long")
    assert "q[1] has 11" in msg and "limit is 10" in msg
    msg = assert_error(client.post("/translate", json=body(["a"] * 4)), 413, "batch_too_large")
    assert "4 texts" in msg and "limit is 3" in msg
    assert client.post("/translate", json=body(["a"] * 3)).status_code == 200


# --- Bind address and start-up ---------------------------------------------------------------


def test_default_bind_is_loopback_and_exposed_hosts_need_keys(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--artifacts", str(tmp_path)])
    assert args.host == "127.0.0.1" and args.port == 5000
    assert settings_from_args(args, {}).host == "127.0.0.1"
    exposed = build_parser().parse_args(["--artifacts", str(tmp_path), "--host", "0.0.0.0"])
    with pytest.raises(ServerConfigError, match="not a loopback address"):
        settings_from_args(exposed, {})
    assert settings_from_args(exposed, {API_KEYS_ENV: KEY_A}).api_keys == (KEY_A,)
    # main refuses before it loads anything (the artifact folder here is empty).
    with pytest.raises(SystemExit, match="API keys"):
        main(["--artifacts", str(tmp_path), "--host", "::"])
    with pytest.raises(ServerConfigError, match="at least 16 characters"):
        create_app(FakeTranslator(), ServerSettings(api_keys=("short",)))


def serve_fake(monkeypatch: pytest.MonkeyPatch, *argv: str) -> dict[str, Any]:
    """Run main() with the fake translator in place of an artifact folder, up to the point where
    it would start uvicorn: what it passes to uvicorn.run (the app and the options)."""
    served: dict[str, Any] = {}
    monkeypatch.setattr("runtime.server.load_translator", lambda *args: FakeTranslator())
    # Its LogFloodFilter would stay on pytest's capture handler for the rest of the session.
    monkeypatch.setattr("runtime.server.configure_logging", lambda: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    main(["--artifacts", "unused", *argv])
    return served


def test_default_rate_limits_of_the_settings_and_the_command_line(tmp_path: Path) -> None:
    defaults = ServerSettings()
    assert (defaults.rate_limit, defaults.global_rate_limit) == ("60/minute", "600/minute")
    args = build_parser().parse_args(["--artifacts", str(tmp_path)])
    assert (args.rate_limit, args.global_rate_limit) == ("60/minute", "600/minute")
    settings = settings_from_args(args, {})
    assert (settings.rate_limit, settings.global_rate_limit) == ("60/minute", "600/minute")
    off = ["--artifacts", str(tmp_path), "--rate-limit", "off", "--global-rate-limit", "Off"]
    settings = settings_from_args(build_parser().parse_args(off), {})
    assert (settings.rate_limit, settings.global_rate_limit) == (None, None)


def test_the_default_rate_limit_refuses_the_61st_request_of_a_minute() -> None:
    client = client_for(settings=ServerSettings())
    assert [client.get("/languages").status_code for _ in range(60)] == [200] * 60
    r = client.get("/languages")
    assert "60 per 1 minute" in assert_error(r, 429, "rate_limited")
    assert client.get("/health").status_code == 200  # exempt


def test_uvicorn_gets_no_server_and_no_date_header(monkeypatch: pytest.MonkeyPatch) -> None:
    assert uvicorn_options(ServerSettings())["server_header"] is False
    assert uvicorn_options(ServerSettings())["date_header"] is False
    served = serve_fake(monkeypatch)
    app = served.pop("app")
    config = uvicorn.Config(app, **served)  # what uvicorn.run(app, **served) builds
    assert (config.host, config.port) == ("127.0.0.1", 5000)
    assert config.server_header is False and config.date_header is False


def test_is_loopback() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.0.2.1", "2001:db8::1", "example.org"]))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_a_non_loopback_bind_with_api_keys_logs_a_warning(
    host: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(API_KEYS_ENV, f"{KEY_A},{KEY_B}")
    monkeypatch.setattr(caplog.handler, "filters", [])  # a flood filter an earlier main() left
    with caplog.at_level(logging.INFO, logger="runtime.server"):
        served = serve_fake(monkeypatch, "--host", host)  # uvicorn.run is a stub: nothing binds
    assert served["host"] == host
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.levelname, r.getMessage()) for r in warnings] == [
        (
            "runtime.server",
            "WARNING",
            f"binding {host}: the server is reachable from other machines "
            "(API keys required: 2 configured)",
        )
    ]


@pytest.mark.parametrize("keys", [None, KEY_A])
@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_bind_logs_no_warning(
    host: str, keys: str | None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if keys is not None:
        monkeypatch.setenv(API_KEYS_ENV, keys)
    else:
        monkeypatch.delenv(API_KEYS_ENV, raising=False)
    monkeypatch.setattr(caplog.handler, "filters", [])  # a flood filter an earlier main() left
    with caplog.at_level(logging.INFO, logger="runtime.server"):
        served = serve_fake(monkeypatch, "--host", host)
    assert served["host"] == host
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any(r.getMessage().startswith("loaded unused") for r in caplog.records)  # it ran


# --- Timeout and concurrency -----------------------------------------------------------------


async def _post_many(app: FastAPI, n: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(client.post("/translate", json=body()) for _ in range(n)))


def test_timeout_gives_structured_504() -> None:
    client = client_for(FakeTranslator(delay_s=0.5), ServerSettings(rate_limit=None, timeout_s=0.1))
    assert "within 0.1 s" in assert_error(client.post("/translate", json=body()), 504, "timeout")


def test_concurrency_is_bounded() -> None:
    fake = FakeTranslator(delay_s=0.05)
    settings = ServerSettings(rate_limit=None, max_concurrency=2, batch_sentences=1)
    app = create_app(fake, settings)
    responses = asyncio.run(_post_many(app, 8))
    assert [r.status_code for r in responses] == [200] * 8
    assert fake.max_running == 2 and len(fake.batches) == 8  # batching off: one each


def test_concurrency_stays_bounded_after_timeouts() -> None:
    # Timed-out translations keep their worker until they finish: none start beside them.
    fake = FakeTranslator(delay_s=0.3)
    app = create_app(fake, ServerSettings(rate_limit=None, max_concurrency=1, timeout_s=0.1))
    responses = asyncio.run(_post_many(app, 3))
    assert [r.status_code for r in responses] == [504] * 3
    time.sleep(0.4)  # let the running one finish
    # One batch ran (alone or with the others); the rest left the queue at their deadline.
    assert fake.max_running == 1 and len(fake.batches) == 1


# --- Schema-driven fuzzing -------------------------------------------------------------------


@pytest.mark.parametrize("keys", [(), (KEY_A,)], ids=["open", "with-keys"])
def test_fuzzed_requests_never_give_5xx(keys: tuple[str, ...]) -> None:
    fake = FakeTranslator()
    app = create_app(fake, ServerSettings(api_keys=keys, rate_limit=None))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    cases = st.one_of([schema.as_strategy(generation_mode=mode) for mode in modes])
    # Random language codes almost never name a supported one: half the time, use real ones.
    pairs = st.none() | st.permutations(LANGS).map(lambda p: (p[0], p[1]))
    headers = {"X-API-Key": KEY_A} if keys else None

    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, pair=pairs)
    def check(case: schemathesis.Case[Any], pair: tuple[str, str] | None) -> None:
        if pair is not None and isinstance(case.body, dict):
            case.body["source"], case.body["target"] = pair
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"error", "code"}

    check()
    assert fake.calls  # some requests got through to the translator


# --- End to end with a real exported artifact folder -----------------------------------------


@pytest.fixture(scope="module")
def artifacts(toy_tokenizer: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ONNX export (fp32) of a seeded 1+1-layer model with the toy tokenizer (~20 s)."""
    from export.common import ExportOptions
    from export.onnx import export_onnx
    from lingolite.checkpoint import save_pretrained
    from lingolite.model import LingoLite
    from lingolite.utils import set_seed
    from tests.helpers import small_config

    root = tmp_path_factory.mktemp("server_artifacts")
    set_seed(0)
    config = small_config(
        vocab_size=toy_tokenizer.vocab_size, n_encoder_layers=1, n_decoder_layers=1
    )
    save_pretrained(LingoLite(config).eval(), root / "checkpoint")
    toy_tokenizer.save(root / "checkpoint")
    return export_onnx(
        ExportOptions(out=root / "onnx", checkpoint=root / "checkpoint"), quantize="none"
    )


@pytest.fixture(scope="module")
def real_translator(artifacts: Path) -> Translator:
    return Translator.from_artifacts(artifacts, backend="onnxruntime", precision="fp32")


def test_end_to_end_with_real_artifacts(real_translator: Translator) -> None:
    client = TestClient(create_app(real_translator, NO_RATE_LIMIT))
    assert [lang["code"] for lang in client.get("/languages").json()] == sorted(LANGS)
    texts = ["A dog runs in the park.", "Two men are talking.", "", "  ", "\x01 🙂 <2de>"]
    want = real_translator.translate_detailed(texts, "en", "de", num_beams=2, max_length=8)
    r = client.post("/translate", json=body(texts, beam_size=2, max_length=8))
    assert r.status_code == 200
    assert r.json() == {
        "translatedText": [t.text for t in want],
        "truncated": [t.truncated for t in want],
    }
    # Blank texts come back as they were, without running the model.
    assert [t.text for t in want[2:4]] == ["", "  "] and not any(t.truncated for t in want[2:4])
    one = client.post("/translate", json={"q": texts[0], "source": "en", "target": "fr"})
    expected = real_translator.translate_detailed(texts[:1], "en", "fr")[0]
    assert one.json() == {"translatedText": expected.text, "truncated": expected.truncated}
    r = client.post("/translate", json=body(max_length=10**9))
    assert "max_length" in assert_error(r, 400, "invalid_request")
    assert_error(client.post("/translate", json=body(source="cs")), 400, "unsupported_language")


def test_main_verifies_artifacts_and_binds_loopback(
    artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    main(["--artifacts", str(artifacts), "--rate-limit", "off", "--threads", "1"])
    assert served["host"] == "127.0.0.1" and served["port"] == 5000
    backend = load_translator(artifacts, "fp32", threads=1).backend
    assert isinstance(backend, OnnxBackend)
    assert backend.sessions["encoder"].get_session_options().intra_op_num_threads == 1
    assert TestClient(served["app"]).get("/health").json() == {"status": "ok"}
    tampered = tmp_path / "tampered"
    shutil.copytree(artifacts, tampered)
    with (tampered / "decoder.onnx").open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(SystemExit, match="sha256"):
        main(["--artifacts", str(tampered)])
