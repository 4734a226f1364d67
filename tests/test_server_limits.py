"""Denial-of-service limits of the translation server: deadlines that stop the work, request
cost, the bounded queue, rate limits, invalid text, slow clients and log floods.

Everything runs in-process or on 127.0.0.1 with a few dozen sockets, and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lingolite.search import (
    BoolArray,
    Cache,
    FloatArray,
    IntArray,
    Memory,
    SearchCancelled,
    SearchConfig,
    TokenIds,
)
from lingolite.segment import segment
from lingolite.tokenizer import Tokenizer
from runtime.server import (
    BatchScheduler,
    LogFloodFilter,
    ServerSettings,
    client_bucket,
    configure_logging,
    create_app,
    uvicorn_options,
)
from runtime.translator import Translator, UnitResult
from tests.test_server import FakeTranslator, assert_error, body


class SlowBackend:
    """A search backend whose step time and cache grow with its rows, like a real model.

    Each step sleeps ``step_s_per_row`` per row and returns logits that never pick EOS, so a
    search runs to ``max_tgt_len`` unless stopped; ``steps`` counts every decoder step taken.
    """

    def __init__(self, vocab: int, max_tgt_len: int = 32, step_s_per_row: float = 5e-4) -> None:
        self.vocab, self._max_tgt_len, self.step_s_per_row = vocab, max_tgt_len, step_s_per_row
        self.steps = 0
        self._lock = threading.Lock()

    @property
    def max_tgt_len(self) -> int:
        return self._max_tgt_len

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        b, s = src_ids.shape
        zeros = np.zeros((1, b, 1, s, 4), dtype=np.float32)
        return Memory(src_mask, zeros, zeros)

    def init_cache(self, batch: int) -> Cache:
        return (np.ones((1, batch, 1 << 14), dtype=np.float32),)  # 64 KiB per row

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        rows = tokens.shape[0]
        with self._lock:
            self.steps += 1
        time.sleep(self.step_s_per_row * rows)
        logits = np.zeros((rows, self.vocab), dtype=np.float32)
        logits[:, 10] = 1.0  # never EOS (2)
        return logits, cache


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


async def _post(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    return await client.post("/translate", json=payload)


def test_timed_out_work_stops_and_normal_requests_still_get_answers(
    toy_tokenizer: Tokenizer,
) -> None:
    # The attack of the issue, scaled down: 2 workers, requests of 32 texts x 8 beams that need
    # ~4 s of work each, timeout 0.5 s. Before the fix the workers stayed busy ~4 s and the
    # next request timed out; now the search stops at its next step after the deadline.
    backend = SlowBackend(toy_tokenizer.vocab_size)
    translator = Translator(toy_tokenizer, backend, max_src_len=64)
    settings = ServerSettings(
        rate_limit=None,
        max_concurrency=2,
        max_queue=8,
        timeout_s=0.5,
        max_request_cost=10**6,  # admit the attack, so that the deadline has to stop it
    )
    app = create_app(translator, settings)
    segment("Warm up the sentence splitter.", "en")  # its first call loads its rules
    attack = body(["a dog runs in the park " * 8] * 32, beam_size=8)

    async def scenario() -> tuple[list[int], httpx.Response, float, int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            rss_before = rss_bytes()
            attacks = await asyncio.gather(*(_post(client, attack) for _ in range(6)))
            rss_peak = rss_bytes()
            await asyncio.sleep(0.3)  # one attack step is 0.13 s: the workers are free now
            steps = backend.steps
            start = time.monotonic()
            normal = await _post(client, body("A man rides a bike."))
            elapsed = time.monotonic() - start
            await asyncio.sleep(0.3)
            steps_after = backend.steps - steps
            return (
                [r.status_code for r in attacks],
                normal,
                elapsed,
                steps_after,
                (rss_peak - rss_before),
            )

    codes, normal, elapsed, steps_after, rss_growth = asyncio.run(scenario())
    assert codes == [504] * 6
    # 200 means the pool ran it within its timeout; the wall time adds request handling on a
    # shared, loaded CPU.
    assert normal.status_code == 200, normal.text
    assert elapsed < 3 * settings.timeout_s
    # Only the normal request's own steps ran after the attack timed out (<= max_tgt_len).
    assert steps_after <= backend.max_tgt_len
    assert app.state.scheduler.pending == 0
    assert rss_growth < 200 * 2**20  # two 16 MiB caches at most, never six piling up


def test_over_budget_request_is_413_before_any_work() -> None:
    fake = FakeTranslator()
    settings = ServerSettings(rate_limit=None, max_request_cost=4 * 64)
    client = TestClient(create_app(fake, settings))
    r = client.post("/translate", json=body(["x"] * 5, beam_size=1))  # 5 x 1 x 64 = 320
    msg = assert_error(r, 413, "request_too_expensive")
    assert "320" in msg and "256" in msg
    assert fake.calls == []
    # Blank texts cost nothing; max_length lowers the cost.
    assert client.post("/translate", json=body(["x"] * 4 + [" "] * 4)).status_code == 200
    ok = client.post("/translate", json=body(["x"] * 5, beam_size=2, max_length=16))
    assert ok.status_code == 200


def test_full_queue_is_503_with_retry_after() -> None:
    fake = FakeTranslator(delay_s=0.3)
    # Batching off: a batch holds one request, so one runs and one waits. (With batching, a
    # batch that takes several requests frees their queue places: test_server_batching.py.)
    settings = ServerSettings(
        rate_limit=None, max_concurrency=1, max_queue=1, timeout_s=5, batch_sentences=1
    )
    app = create_app(fake, settings)

    async def burst() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await asyncio.gather(*(_post(client, body()) for _ in range(4)))

    responses = asyncio.run(burst())
    assert sorted(r.status_code for r in responses) == [200, 200, 503, 503]
    busy = [r for r in responses if r.status_code == 503]
    assert all(int(r.headers["retry-after"]) >= 1 for r in busy)
    assert_error(busy[0], 503, "busy")
    assert len(fake.calls) == 2


class StopOnlyTranslator(FakeTranslator):
    """A fake whose batches run until their ``should_stop`` says so, then raise."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped = 0

    def decode_units(
        self,
        sources: Sequence[TokenIds],
        config: SearchConfig,
        *,
        num_hypotheses: int = 1,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[UnitResult]:
        assert should_stop is not None
        while not should_stop():
            time.sleep(0.01)
        self.stopped += 1
        raise SearchCancelled("stopped")


def test_scheduler_releases_its_workers_after_timeouts() -> None:
    fake = StopOnlyTranslator()
    # No queue: a request is admitted only while the one worker is idle.
    scheduler = BatchScheduler(fake, workers=1, timeout_s=0.1, max_queue=0)

    async def twice() -> None:
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await scheduler.translate(lambda: fake.plan(["x"], "en", "de"))
            await asyncio.sleep(0.1)

    asyncio.run(twice())
    # Each batch stopped at its request's deadline, and the worker took the next one.
    assert fake.stopped == 2 and scheduler.pending == 0 and scheduler.queued == 0
    scheduler.close()


def test_global_rate_limit_holds_across_keys_and_addresses() -> None:
    keys = ("k" * 20, "q" * 20, "z" * 20)
    settings = ServerSettings(api_keys=keys, rate_limit="10/minute", global_rate_limit="4/minute")
    client = TestClient(create_app(FakeTranslator(), settings))
    codes = [
        client.post("/translate", json=body(), headers={"X-API-Key": keys[i % 3]}).status_code
        for i in range(6)
    ]
    assert codes == [200] * 4 + [429] * 2
    r = client.post("/translate", json=body(), headers={"X-API-Key": keys[2]})
    assert "global" in assert_error(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert client.get("/health").status_code == 200  # never limited


def test_rate_limit_buckets() -> None:
    assert client_bucket("127.0.0.1") == client_bucket("127.0.0.7") == client_bucket("::1")
    assert client_bucket("10.0.0.1") != client_bucket("10.0.0.2")
    assert client_bucket("2001:db8::1") == client_bucket("2001:db8::ffff:1")
    assert client_bucket("2001:db8::1") != client_bucket("2001:db8:0:1::1")
    assert client_bucket("::ffff:10.0.0.1") == client_bucket("10.0.0.1")
    assert client_bucket("testclient") == "addr:testclient"


def test_loopback_clients_share_one_bucket_other_addresses_have_their_own() -> None:
    # Before, every 127.0.0.x address got a fresh bucket (one script could rotate through
    # them); now all of loopback is one client, while distinct remote addresses stay apart.
    settings = ServerSettings(rate_limit="2/minute", global_rate_limit=None)
    app = create_app(FakeTranslator(), settings)

    async def post_from(address: str, path: str = "/translate") -> int:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            if path == "/translate":
                return (await _post(client, body())).status_code
            return (await client.get(path)).status_code

    async def scenario() -> tuple[list[int], list[int], list[int]]:
        loopback = [await post_from(a) for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "::1")]
        remote = [await post_from(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.1")]
        other_endpoint = [await post_from("127.0.0.9", "/languages") for _ in range(3)]
        return loopback, remote, other_endpoint

    loopback, remote, other_endpoint = asyncio.run(scenario())
    assert loopback == [200, 200, 429, 429]
    assert remote == [200, 200, 200, 429]
    assert other_endpoint == [200, 200, 429]  # each endpoint has its own budget


@pytest.mark.parametrize(
    "raw",
    [
        b'{"q": "a\\udc80", "source": "en", "target": "de"}',
        b'{"q": ["ok", "\\udfff"], "source": "en", "target": "de"}',
        b'{"q": "a\\u0000b", "source": "en", "target": "de"}',
    ],
    ids=["lone-surrogate", "surrogate-in-batch", "nul"],
)
def test_invalid_text_is_400(raw: bytes) -> None:
    fake = FakeTranslator()
    client = TestClient(create_app(fake, ServerSettings(rate_limit=None)))
    r = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_text")
    assert fake.calls == []


def test_real_translator_refuses_invalid_text(toy_tokenizer: Tokenizer) -> None:
    translator = Translator(toy_tokenizer, SlowBackend(toy_tokenizer.vocab_size), max_src_len=64)
    client = TestClient(create_app(translator, ServerSettings(rate_limit=None)))
    raw = b'{"q": ["ok", "\\udfff"], "source": "en", "target": "de"}'
    r = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert "q 1" in assert_error(r, 400, "invalid_text")


def test_log_flood_filter_caps_records_per_logger() -> None:
    flood = LogFloodFilter(burst=5, window_s=0.2)

    def record(name: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, "accept failed", None, None)

    passed = [flood.filter(record("asyncio")) for _ in range(1000)]
    assert sum(passed) == 5
    assert flood.filter(record("uvicorn.error"))  # other loggers have their own budget
    time.sleep(0.25)
    later = record("asyncio")
    assert flood.filter(later) and "995 records of this logger suppressed" in later.getMessage()


def test_server_logging_is_behind_the_flood_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() logs through configure_logging: an overload's tracebacks (asyncio's EMFILE) are
    # capped at 20 per logger per 10 s instead of flooding the disk.
    handler = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    configure_logging()
    for _ in range(1000):
        logging.getLogger("asyncio").error("accept failed: Too many open files")
    assert handler.stream.getvalue().count("Too many open files") == 20


# --- Slow clients against a real server on loopback ----------------------------------------


@pytest.fixture
def live_server() -> Iterator[tuple[int, FakeTranslator]]:
    settings = ServerSettings(
        rate_limit=None,
        max_connections=16,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
        keep_alive_s=1,
    )
    fake = FakeTranslator()
    app: FastAPI = create_app(fake, settings)
    options = {**uvicorn_options(settings), "port": 0, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port, fake
    finally:
        server.should_exit = True
        thread.join(10)


def _slow_socket(port: int, first: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        sock.settimeout(0.05)
        data = sock.recv(4096)
    except TimeoutError:
        return False
    except OSError:  # reset
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_responses_carry_no_server_and_no_date_header(
    live_server: tuple[int, FakeTranslator],
) -> None:
    port, _ = live_server
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=3) as client:
        responses = [client.get("/health"), client.get("/no-such-path")]
    assert [r.status_code for r in responses] == [200, 404]
    for r in responses:
        assert "server" not in r.headers and "date" not in r.headers, dict(r.headers)
        assert r.headers["content-type"] == "application/json"  # the headers were read


def test_slow_clients_are_dropped_and_health_keeps_answering(
    live_server: tuple[int, FakeTranslator],
) -> None:
    port, fake = live_server
    slow_headers = [_slow_socket(port, b"GET /health HTTP/1.1\r\nHost: x\r\n") for _ in range(40)]
    head = b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    slow_bodies = [_slow_socket(port, head + b"Content-Length: 60\r\n\r\n{") for _ in range(4)]
    start = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=3) as client:
        # 44 slow clients against a cap of 16: the newest connection still gets its answer.
        for _ in range(3):
            assert client.get("/health").json() == {"status": "ok"}
        # Keep trickling: one header line (or body byte) every 0.2 s for 1.6 s.
        for _ in range(8):
            for sock in slow_headers + slow_bodies:
                with contextlib.suppress(OSError):  # already closed by the server
                    sock.sendall(b"X-Slow: 1\r\n" if sock in slow_headers else b" ")
            time.sleep(0.2)
        assert client.get("/health").json() == {"status": "ok"}
    assert time.monotonic() - start < 10
    # Every slow client was cut off: headers after 1 s or by the cap, bodies with a 408.
    assert all(_closed_by_server(s) for s in slow_headers + slow_bodies)
    assert fake.calls == []
    for sock in slow_headers + slow_bodies:
        sock.close()
