"""Batching across requests in the server: requests share decoder batches, answers go back to
the right request in order, deadlines and the queue bound hold per request, batching off.

No assertion is on elapsed time: batches are made deterministic with ``--batch-sentences`` (a
batch starts the moment it is full) and a long ``--batch-wait-ms``, or gated by events.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from benchmarks import server_load
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
from lingolite.tokenizer import Tokenizer
from runtime.server import BatchScheduler, ServerSettings, build_parser, create_app
from runtime.translator import Translator, UnitResult
from tests.test_server import FakeTranslator, assert_error, body

NO_LIMIT: dict[str, Any] = {"rate_limit": None, "global_rate_limit": None}


async def _post(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    return await client.post("/translate", json=payload)


async def _post_all(app: FastAPI, payloads: Sequence[dict[str, Any]]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await asyncio.gather(*(_post(client, p) for p in payloads))


class GatedTranslator(FakeTranslator):
    """A fake whose batches hold until ``gate`` is set, polling ``should_stop`` like the search
    does between steps; ``stopped`` counts batches that stopped for it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.stopped = 0

    def decode_units(
        self,
        sources: Sequence[TokenIds],
        config: SearchConfig,
        *,
        num_hypotheses: int = 1,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[UnitResult]:
        out = super().decode_units(sources, config, num_hypotheses=num_hypotheses)
        while not self.gate.wait(0.01):
            if should_stop is not None and should_stop():
                self.stopped += 1
                raise SearchCancelled("stopped between steps")
        return out


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_concurrent_requests_share_one_batch_and_get_their_own_answers() -> None:
    fake = FakeTranslator()
    # 4 sentences fill the batch: it starts when the last request arrives, never before.
    settings = ServerSettings(**NO_LIMIT, batch_sentences=4, batch_wait_ms=20_000)
    app = create_app(fake, settings)
    payloads = [
        body(["one", "two"]),
        body("three"),
        {"q": "four", "source": "en", "target": "fr"},  # another pair, same batch
    ]
    responses = asyncio.run(_post_all(app, payloads))
    assert [r.json()["translatedText"] for r in responses] == [
        ["<de> ONE", "<de> TWO"],
        "<de> THREE",
        "<fr> FOUR",
    ]
    assert len(fake.batches) == 1 and sorted(fake.batches[0]) == ["four", "one", "three", "two"]
    transport = httpx.ASGITransport(app=app)

    async def scrape() -> str:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape())
    assert "lingolite_batch_sentences_sum 4.0" in text
    assert "lingolite_batch_requests_sum 3.0" in text
    assert 'lingolite_batch_requests_bucket{le="2.0"} 0.0' in text
    assert 'lingolite_batch_requests_bucket{le="4.0"} 1.0' in text


def test_only_compatible_requests_share_a_batch() -> None:
    fake = FakeTranslator()
    settings = ServerSettings(**NO_LIMIT, batch_sentences=2, batch_wait_ms=1000)
    app = create_app(fake, settings)
    payloads = [
        body("a", beam_size=2, alternatives=1),  # beam 2, two hypotheses
        body("b"),  # greedy: another search, never in a beam-2 batch
        body("c", beam_size=2),  # beam 2, one hypothesis: shares the first one's batch
    ]
    a, b, c = asyncio.run(_post_all(app, payloads))
    assert sorted(sorted(batch) for batch in fake.batches) == [["a", "c"], ["b"]]
    assert a.json() == {"translatedText": "<de> A", "alternatives": ["<de> A*"], "truncated": False}
    assert b.json() == {"translatedText": "<de> B", "truncated": False}
    assert c.json() == {"translatedText": "<de> C", "truncated": False}  # no alternatives


def test_a_request_larger_than_a_batch_is_split_and_answered_in_order() -> None:
    fake = FakeTranslator()
    app = create_app(fake, ServerSettings(**NO_LIMIT, batch_sentences=2, batch_wait_ms=0))
    texts = ["v", "w LONG", "x", "y", "z"]
    (r,) = asyncio.run(_post_all(app, [body(texts)]))
    assert r.json() == {
        "translatedText": [f"<de> {t.upper()}" for t in texts],
        "truncated": [False, True, False, False, False],
    }
    assert sorted(len(b) for b in fake.batches) == [1, 2, 2]


def test_batching_off_decodes_every_sentence_alone_with_the_same_answers() -> None:
    payloads = [body(["one", "two"]), body("three", alternatives=1), body("four")]
    answers = {}
    for n in (1, 32):
        fake = FakeTranslator()
        app = create_app(fake, ServerSettings(**NO_LIMIT, batch_sentences=n, batch_wait_ms=50))
        answers[n] = [r.json() for r in asyncio.run(_post_all(app, payloads))]
        if n == 1:
            assert sorted(map(len, fake.batches)) == [1, 1, 1, 1]
    assert answers[1] == answers[32]
    assert answers[1][1] == {
        "translatedText": "<de> THREE",
        "alternatives": ["<de> THREE*"],
        "truncated": False,
    }


def test_a_request_that_times_out_in_a_batch_does_not_break_the_others() -> None:
    fake = GatedTranslator()
    # A and B share one batch (it starts when B arrives); A's deadline passes first.
    settings = ServerSettings(
        **NO_LIMIT, timeout_s=2.0, batch_sentences=2, batch_wait_ms=1900, max_concurrency=1
    )
    app = create_app(fake, settings)

    async def scenario() -> tuple[httpx.Response, httpx.Response, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            a = asyncio.create_task(_post(client, body("a")))
            await _until(lambda: app.state.scheduler.pending == 1)
            await asyncio.sleep(1.0)
            b = asyncio.create_task(_post(client, body("b")))
            first = await a  # 504 at its deadline, while the batch still holds B
            stopped = fake.stopped
            fake.gate.set()
            return first, await b, stopped

    first, second, stopped = asyncio.run(scenario())
    assert_error(first, 504, "timeout")
    assert second.status_code == 200 and second.json()["translatedText"] == "<de> B"
    assert stopped == 0 and len(fake.batches) == 1 and sorted(fake.batches[0]) == ["a", "b"]
    assert app.state.scheduler.pending == 0


def test_a_batch_runs_while_one_request_lives_and_stops_when_none_does() -> None:
    fake = GatedTranslator()
    scheduler = BatchScheduler(
        fake, workers=1, timeout_s=60, batch_sentences=2, batch_wait_s=30, max_queue=4
    )

    def plan(text: str) -> Callable[[], Any]:
        return lambda: fake.plan([text], "en", "de")

    async def scenario() -> tuple[bool, str, int, bool, int]:
        # A and B share a batch; A's client leaves: B still gets its answer.
        a = asyncio.create_task(scheduler.translate(plan("a")))
        b = asyncio.create_task(scheduler.translate(plan("b")))
        await _until(lambda: len(fake.batches) == 1)
        a.cancel()
        await asyncio.sleep(0.1)
        a_gone, stopped_while_b_lives = a.cancelled(), fake.stopped
        fake.gate.set()
        b_text = (await b)[0].text
        # C and D share a batch; both leave: the batch stops, the worker takes E.
        fake.gate.clear()
        c = asyncio.create_task(scheduler.translate(plan("c")))
        d = asyncio.create_task(scheduler.translate(plan("d")))
        await _until(lambda: len(fake.batches) == 2)
        c.cancel()
        d.cancel()
        await _until(lambda: fake.stopped == 1)
        fake.gate.set()
        e, f = await asyncio.gather(scheduler.translate(plan("e")), scheduler.translate(plan("f")))
        e_ok = [e[0].text, f[0].text] == ["<de> E", "<de> F"]
        return a_gone, b_text, stopped_while_b_lives, e_ok, len(fake.batches)

    a_gone, b_text, stopped_while_b_lives, e_ok, batches = asyncio.run(scenario())
    assert a_gone and b_text == "<de> B" and stopped_while_b_lives == 0
    assert e_ok and batches == 3 and fake.stopped == 1
    assert scheduler.pending == 0 and scheduler.queued == 0
    scheduler.close()


def test_full_queue_is_503_while_a_batch_runs() -> None:
    fake = GatedTranslator()
    settings = ServerSettings(**NO_LIMIT, max_concurrency=1, max_queue=1, batch_wait_ms=0)
    app = create_app(fake, settings)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = asyncio.create_task(_post(client, body("one")))
            await _until(lambda: len(fake.batches) == 1)  # the only worker is busy
            second = asyncio.create_task(_post(client, body("two")))
            await _until(lambda: app.state.scheduler.queued == 1)
            third = await _post(client, body("three"))  # the queue is full
            fake.gate.set()
            return [await first, await second, third]

    first, second, third = asyncio.run(scenario())
    assert first.json()["translatedText"] == "<de> ONE"
    assert second.json()["translatedText"] == "<de> TWO"
    assert_error(third, 503, "busy")
    assert int(third.headers["retry-after"]) >= 1
    assert fake.batches == [["one"], ["two"]]
    assert [c["texts"] for c in fake.calls] == [["one"], ["two"]]  # the 503 planned nothing


def test_batch_options_are_validated_and_in_help() -> None:
    for bad in ({"batch_sentences": 0}, {"batch_wait_ms": -1.0}, {"batch_wait_ms": 40_000.0}):
        with pytest.raises(ValueError, match="batch"):
            ServerSettings(**bad).validate()
    text = build_parser().format_help()
    assert "--batch-sentences" in text and "--batch-wait-ms" in text
    args = build_parser().parse_args(["--artifacts", ".", "--batch-sentences", "1"])
    assert args.batch_sentences == 1 and args.batch_wait_ms == ServerSettings().batch_wait_ms


# --- The real Translator over a backend that copies its source ------------------------------


class CopyBackend:
    """Greedy or beam search over this backend copies each source (after its language tag):
    step ``pos`` puts all the mass on source token ``pos + 1``. Rows are independent, so an
    answer routed to the wrong request shows."""

    max_tgt_len = 32

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.batch_rows: list[int] = []

    def encode(self, src_ids: IntArray, src_mask: BoolArray) -> Memory:
        self.batch_rows.append(src_ids.shape[0])
        ids = src_ids.astype(np.float32)[None, :, None, :, None]  # (1, b, 1, s, 1)
        return Memory(src_mask, ids, ids)

    def init_cache(self, batch: int) -> Cache:
        return (np.zeros((1, batch, 1), dtype=np.float32),)

    def decode_step(
        self, tokens: IntArray, pos: int, memory: Memory, cache: Cache
    ) -> tuple[FloatArray, Cache]:
        src = memory.cross_k[0, :, 0, :, 0].astype(np.int64)  # (b, s)
        nxt = src[:, pos + 1] if pos + 1 < src.shape[1] else np.full(src.shape[0], 2)
        logits = np.full((src.shape[0], self.vocab), -10.0, dtype=np.float32)
        logits[np.arange(src.shape[0]), nxt] = 10.0
        return logits, cache


def test_real_translator_batches_requests_and_routes_every_sentence(
    toy_tokenizer: Tokenizer,
) -> None:
    backend = CopyBackend(toy_tokenizer.vocab_size)
    translator = Translator(toy_tokenizer, backend, max_src_len=64)
    texts = [
        ["a dog runs. the man is here.", "", "two women"],
        ["the cat sleeps"],
        ["a man walks. a dog runs.\nthe women"],
    ]
    pairs = [("en", "de"), ("en", "fr"), ("de", "en")]
    # Each request alone, as the Translator answers it.
    alone = [translator.translate(t, s, g) for t, (s, g) in zip(texts, pairs, strict=True)]
    assert alone[0][0] == "a dog runs. the man is here." and alone[0][1] == ""
    backend.batch_rows.clear()
    units = sum(len(translator.plan(t, s, g).units) for t, (s, g) in zip(texts, pairs, strict=True))
    assert units >= 5
    settings = ServerSettings(**NO_LIMIT, batch_sentences=units, batch_wait_ms=20_000)
    app = create_app(translator, settings)
    payloads = [{"q": t, "source": s, "target": g} for t, (s, g) in zip(texts, pairs, strict=True)]
    responses = asyncio.run(_post_all(app, payloads))
    assert [r.json()["translatedText"] for r in responses] == alone
    assert backend.batch_rows == [units]  # every sentence of the three requests at once


@pytest.mark.parametrize("beams", [1, 3])
def test_batched_and_alone_agree_with_beams(toy_tokenizer: Tokenizer, beams: int) -> None:
    backend = CopyBackend(toy_tokenizer.vocab_size)
    translator = Translator(toy_tokenizer, backend, max_src_len=64)
    texts = ["the man is here.", "a dog runs. two women", "the cat"]
    alone = [translator.translate([t], "en", "de", num_beams=beams)[0] for t in texts]
    backend.batch_rows.clear()
    app = create_app(
        translator, ServerSettings(**NO_LIMIT, batch_sentences=4, batch_wait_ms=20_000)
    )
    payloads = [body(t, beam_size=beams) for t in texts]
    responses = asyncio.run(_post_all(app, payloads))
    assert [r.json()["translatedText"] for r in responses] == alone
    assert backend.batch_rows == [4]
    assert app.state.scheduler.pending == 0


def test_load_benchmark_alternates_batching_off_and_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[list[str]] = []

    def fake_run(artifacts: Any, *, server_args: Sequence[str], **_: Any) -> dict[str, Any]:
        seen.append(list(server_args))
        on = "1" not in server_args
        return {
            "command": "cmd", "machine": {"platform": "p", "cpus": 2}, "clients": 16,
            "server_args": ["--rate-limit", "off", "--global-rate-limit", "off", *server_args],
            "ok": 10, "errors": 0, "requests_per_s": 20.0 if on else 10.0,
            "latency_ms": {"p50": 50.0 if on else 100.0, "p99": 90.0 if on else 100.0},
            "server_rss_mib": {"peak": 1.0},
        }  # fmt: skip

    monkeypatch.setattr(server_load, "run_load", fake_run)
    out = tmp_path / "cmp.json"
    argv = ["--artifacts", "x", "--compare-batching", "--rounds", "2", "--out", str(out)]
    assert server_load.main([*argv, "--batch-wait-ms", "3"]) == 0
    off = ["--precision", "fp32", "--batch-sentences", "1"]
    on = ["--precision", "fp32", "--batch-wait-ms", "3.0"]
    assert seen == [off, on, off, on]
    result = json.loads(out.read_text())
    assert result["ratios_on_over_off"]["median"] == {"requests_per_s": 2.0, "p50": 0.5, "p99": 0.9}
    assert "req/s 2.0x, p50 0.5x" in out.with_suffix(".md").read_text()
    with pytest.raises(SystemExit):
        server_load.main([*argv, "--batch-sentences", "1"])  # that is "off"
