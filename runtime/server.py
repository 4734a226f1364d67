"""A local translation server (FastAPI + uvicorn), safe by default. PyTorch-free.

``python -m runtime.server --artifacts DIR [--backend onnxruntime|ctranslate2]`` loads and
verifies the artifact folder once, then serves a LibreTranslate-compatible API (an unmodified
LibreTranslate client works):

==========================  ================================================================
``POST /translate``         JSON or form-encoded ``{"q": str | [str], "source": "en",
                            "target": "de", "format": "text", "alternatives": 0,
                            "api_key": null, "beam_size": 1, "max_length": null}`` ->
                            ``{"translatedText": str | [str], "alternatives": [str] | [[str]],
                            "truncated": bool | [bool]}`` (``alternatives`` only when asked for;
                            ``num_beams`` is an alias of ``beam_size``); texts are translated
                            sentence by sentence, breaks kept; ``truncated`` flags a text with a
                            sentence that reached ``max_length`` without ending; ``format``
                            ``html`` is refused (400), never translated tags and all
``GET /languages``          ``[{"code": "de", "name": "German", "targets": ["en", ...]}, ...]``:
                            only the directions the model was trained on
``GET /health``             ``{"status": "ok"}`` (no API key, no rate limit)
``GET /openapi.json``       the OpenAPI schema (no API key)
``GET /metrics``            Prometheus metrics (off with ``--no-metrics``)
==========================  ================================================================

No endpoint loads, swaps or writes models or files.

Every error is LibreTranslate's ``{"error": str}`` plus ``"code": str`` with these statuses:

=====  =====================================================================================
400    a body that is not valid JSON or does not match the schema (code ``invalid_request``),
       unknown language or a direction the model was not trained on (the message names it and
       the supported ones), ``format`` other than ``text``,
       or an option the translator rejects (e.g. ``max_length`` above the model's limit)
401    API key missing (when keys are configured): ``X-API-Key`` header or ``api_key`` field
403    API key wrong
404    unknown path; 405 wrong method
408    the request body did not arrive within ``--body-timeout-s``
413    request body over ``--max-body-bytes`` (counted on the bytes actually received, so a
       missing or false Content-Length cannot bypass it), a text over ``--max-chars``
       characters, more than ``--max-batch`` texts, or a request whose cost (non-blank texts x
       beams x max_length) exceeds ``--max-request-cost`` (refused before any work starts)
415    a body neither JSON nor form-encoded
429    over ``--rate-limit`` (per API key, or per client address without one; per endpoint;
       loopback addresses share one bucket, IPv6 addresses one per /64) or over
       ``--global-rate-limit`` (all clients together), with ``Retry-After``
500    a bug in the server (logged); bad input never produces it
503    ``--max-queue`` requests (plus one per idle worker) already waiting for a batch, with
       ``Retry-After``
504    the translation (queue wait included) took longer than ``--timeout-s``; its queued
       sentences are dropped and a batch with no live request left stops at its next step
=====  =====================================================================================

A text that is not valid Unicode (a lone surrogate such as ``"\\udc80"``) or holds a NUL
character is a 400 (code ``invalid_text``).

Safety: the server binds 127.0.0.1 unless ``--host`` names another address; a non-loopback
address logs a warning and refuses to start without API keys. Keys (``--api-keys-file``, one per
line, and/or ``LINGOLITE_API_KEYS``, comma-separated) are compared in constant time against every
key. Translations run in ``--max-concurrency`` worker threads, off the event loop, batched
across requests (:class:`BatchScheduler`): a free worker decodes up to ``--batch-sentences``
sentences of every waiting request with the same beam size and ``max_length`` at once (language
pairs mix: the target language is each sentence's first token), waiting at most
``--batch-wait-ms`` for a batch to fill; ``--batch-sentences 1`` turns batching off. Besides
one request per idle worker, at most ``--max-queue`` requests wait for a batch (more get 503).
Every request keeps its own deadline: when it times out (504) or its client leaves, its
sentences still queued leave the queue, and a running batch stops before its next decoder step
(``lingolite.search``'s ``should_stop`` hook) once none of its requests is alive, so at most
``--max-concurrency`` batches ever run at once and none outlives the last deadline among its
requests by more than one step. Answers are the same shape and order as without batching.

Connections (see :class:`GuardedH11Protocol`): at most ``--max-connections`` are open at once
(when full, the oldest connection still waiting for its request headers is closed to make room,
so slow clients cannot lock out others); request headers must arrive within
``--header-timeout-s`` of the connection or the previous response, the body within
``--body-timeout-s``, and idle keep-alive connections close after ``--keep-alive-s``. Repeated
log records (e.g. asyncio's "Too many open files") are rate limited per logger.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Protocol

import h11
import limits
import limits.storage
import limits.strategies
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from lingolite.search import SearchCancelled, SearchConfig, StopCheck, TokenIds
from lingolite.segment import segment
from lingolite.utils import loads_json
from runtime.manifest import load_manifest
from runtime.translator import (
    Plan,
    Translation,
    Translator,
    UnitResult,
    assemble,
    text_problems,
)

logger = logging.getLogger("runtime.server")  # also when run as __main__


DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 5000
API_KEY_HEADER: Final = "x-api-key"
API_KEYS_ENV: Final = "LINGOLITE_API_KEYS"
MIN_API_KEY_CHARS: Final = 16
MAX_BEAMS: Final = 8  # beam search cost grows with the beam; more than 8 buys nothing here
# Runtimes the server can serve: the PyTorch-free ones (ExecuTorch needs torch and is batch 1).
SERVER_BACKENDS: Final = ("onnxruntime", "ctranslate2")
MAX_LANGUAGE_CODE_CHARS: Final = 16
PUBLIC_PATHS: Final = frozenset({"/health", "/openapi.json"})  # no API key needed
ROUTES: Final = ("/translate", "/languages", "/health", "/metrics", "/openapi.json")

LANGUAGE_NAMES: Final = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "hi": "Hindi",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


class TranslatorLike(Protocol):
    """What the server needs of ``runtime.translator.Translator`` (tests pass fakes): a request
    is planned into units (:meth:`plan`), units of any requests with equal search configs are
    decoded together (:meth:`decode_units`), and :func:`runtime.translator.assemble` puts each
    request's answer back together."""

    @property
    def languages(self) -> Sequence[str]: ...

    @property
    def directions(self) -> Sequence[str]:
        """The trained directions ("en-de", ...): the only ones served."""
        ...

    @property
    def max_tgt_len(self) -> int: ...

    def plan(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        num_beams: int = 1,
        num_hypotheses: int = 1,
        max_length: int | None = None,
    ) -> Plan: ...

    def decode_units(
        self,
        sources: Sequence[TokenIds],
        config: SearchConfig,
        *,
        num_hypotheses: int = 1,
        should_stop: StopCheck | None = None,
    ) -> list[UnitResult]: ...


class ServerConfigError(ValueError):
    """Settings the server refuses to start with; the message names every problem."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


@dataclass(frozen=True)
class ServerSettings:
    """Limits and security options; the defaults are the safe ones."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never log the keys
    rate_limit: str | None = "60/minute"  # per key (or client address) and endpoint; None: off
    global_rate_limit: str | None = "600/minute"  # all clients together; None: off
    max_body_bytes: int = 256 * 1024  # fits max_batch texts of max_chars \u-escaped characters
    max_chars: int = 1000
    max_batch: int = 32
    # Decoder rows x steps one request may ask for: non-blank texts x beams x max_length.
    # 16384 = 32 texts x beam 4 x 128 tokens, or 16 texts x beam 8 x 128.
    max_request_cost: int = 16384
    timeout_s: float = 30.0
    max_concurrency: int = 2
    max_queue: int = 8  # requests waiting for a batch beside the idle workers; more get 503
    # Batching across requests: a worker decodes up to batch_sentences sentences of compatible
    # requests at once, waiting at most batch_wait_ms after the oldest arrived for the batch to
    # fill. batch_sentences 1 turns batching off (every sentence decoded alone).
    batch_sentences: int = 32
    batch_wait_ms: float = 5.0
    max_connections: int = 128  # open connections; the oldest one still sending headers goes first
    header_timeout_s: float = 10.0  # request line + headers must arrive within this
    body_timeout_s: float = 10.0  # the whole body must arrive within this
    keep_alive_s: int = 5  # idle keep-alive connections close after this
    # Prometheus metrics at /metrics; like every path but /health, behind the API keys when
    # keys are configured (always beyond loopback).
    metrics: bool = True

    def validate(self) -> None:
        problems = []
        if not is_loopback(self.host) and not self.api_keys:
            problems.append(
                f"--host {self.host} is not a loopback address, so the server would be reachable "
                f"from other machines: give API keys with --api-keys-file or {API_KEYS_ENV}"
            )
        if not 0 <= self.port <= 65535:
            problems.append(f"--port must be in [0, 65535], got {self.port}")
        short = [i for i, key in enumerate(self.api_keys) if len(key) < MIN_API_KEY_CHARS]
        if short:
            problems.append(
                f"API keys must have at least {MIN_API_KEY_CHARS} characters; "
                f"keys number {[i + 1 for i in short]} are shorter"
            )
        bad = [
            i
            for i, key in enumerate(self.api_keys)
            if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key)
        ]
        if bad:
            problems.append(
                f"API keys must be printable ASCII without spaces; keys number "
                f"{[i + 1 for i in bad]} are not"
            )
        for flag, rate in (
            ("--rate-limit", self.rate_limit),
            ("--global-rate-limit", self.global_rate_limit),
        ):
            if rate is None:
                continue
            try:
                limits.parse(rate)
            except ValueError:
                problems.append(f"{flag} must look like '60/minute' or be 'off', got {rate!r}")
        for name in (
            "max_body_bytes", "max_chars", "max_batch", "max_request_cost", "max_concurrency",
            "max_connections", "keep_alive_s", "batch_sentences",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.max_queue < 0:
            problems.append(f"--max-queue must be >= 0, got {self.max_queue}")
        if not 0 <= self.batch_wait_ms < 1000 * self.timeout_s:
            problems.append(
                f"--batch-wait-ms must be >= 0 and below --timeout-s ({self.timeout_s:g} s), got "
                f"{self.batch_wait_ms}"
            )
        for name in ("timeout_s", "header_timeout_s", "body_timeout_s"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                problems.append(f"--{name.replace('_', '-')} must be > 0 and finite, got {value}")
        if problems:
            raise ServerConfigError("refusing to start: " + "; ".join(problems))


def load_api_keys(keys_file: Path | None, env_value: str | None) -> tuple[str, ...]:
    """Keys from ``keys_file`` (one per line; blank lines and ``#`` comments skipped) and from
    ``env_value`` (comma-separated), in that order, without duplicates."""
    keys: list[str] = []
    if keys_file is not None:
        try:
            lines = keys_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ServerConfigError(f"cannot read --api-keys-file {keys_file}: {exc}") from exc
        from_file = [s for line in lines if (s := line.strip()) and not s.startswith("#")]
        if not from_file:
            raise ServerConfigError(f"--api-keys-file {keys_file} holds no keys")
        keys += from_file
    if env_value:
        keys += [s for part in env_value.split(",") if (s := part.strip())]
    return tuple(dict.fromkeys(keys))


def match_api_key(given: str | None, keys: Sequence[str]) -> int | None:
    """Index of the key equal to ``given``; every key is compared, each in constant time."""
    if given is None:
        return None
    given_bytes = given.encode("utf-8", "surrogateescape")
    found = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(given_bytes, key.encode("utf-8")) and found is None:
            found = index
    return found


# --- API schema ---------------------------------------------------------------------------


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong (LibreTranslate's field).")
    code: str = Field(description="A stable name for the kind of error, e.g. rate_limited.")


class TranslateRequest(BaseModel):
    """LibreTranslate's ``/translate`` fields, plus ``beam_size`` and ``max_length``."""

    model_config = ConfigDict(strict=True)

    q: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="A text, or a non-empty list of texts translated as one batch."
    )
    source: str = Field(min_length=1, max_length=MAX_LANGUAGE_CODE_CHARS, examples=["en"])
    target: str = Field(min_length=1, max_length=MAX_LANGUAGE_CODE_CHARS, examples=["de"])
    format: str = Field(
        default="text", max_length=16, description="Only 'text'; 'html' is refused (400)."
    )
    alternatives: int = Field(
        default=0,
        ge=0,
        le=MAX_BEAMS - 1,
        description="How many alternative translations to return besides the best one.",
    )
    api_key: str | None = Field(
        default=None,
        max_length=256,
        description="The API key, when not sent in the X-API-Key header.",
    )
    beam_size: int = Field(
        default=1,
        ge=1,
        le=MAX_BEAMS,
        validation_alias=AliasChoices("beam_size", "num_beams"),
        description="1 for greedy search; more for beam search (at least alternatives + 1 is "
        "used). Alias: num_beams.",
    )
    max_length: int | None = Field(
        default=None, ge=1, description="Most tokens per translation (default: the model's)."
    )


class TranslateResponse(BaseModel):
    translatedText: str | list[str]  # LibreTranslate's field names
    alternatives: list[str] | list[list[str]] | None = Field(
        default=None, description="Only when alternatives > 0: per text, the next best ones."
    )
    truncated: bool | list[bool] = Field(
        description="Per text: a sentence reached max_length without ending (its translation "
        "is cut short)."
    )


FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
# /translate reads its body itself (JSON or a form, like LibreTranslate): its schema is given here.
TRANSLATE_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": TranslateRequest.model_json_schema()}
            for media in ("application/json", FORM_MEDIA_TYPE)
        },
    }
}


def parse_translate_request(media_type: str, raw: bytes) -> TranslateRequest:
    """A ``/translate`` body, JSON (strict types) or form-encoded (numbers from strings; a
    repeated ``q`` is a list of texts); ApiError 400 names every problem, 415 other media."""
    try:
        if media_type == FORM_MEDIA_TYPE:
            return TranslateRequest.model_validate(form_fields(raw), strict=False)
        if media_type in ("", "application/json"):
            # json.loads keeps a lone surrogate escape ("\\udc80") and invalid UTF-8
            # (surrogateescape) as text, so the text check answers it as invalid_text.
            try:
                data = loads_json(raw.decode("utf-8", "surrogateescape"))
            except json.JSONDecodeError as exc:
                raise ApiError(
                    400, "invalid_request", f"the body is not valid JSON: {exc}"
                ) from None
            return TranslateRequest.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", _validation_message(exc.errors())) from None
    raise ApiError(
        415,
        "unsupported_media_type",
        f"send application/json or {FORM_MEDIA_TYPE}, not {media_type}",
    )


def form_fields(raw: bytes) -> dict[str, str | list[str]]:
    """Fields of a form body; invalid UTF-8 survives as lone surrogates (a 400 invalid_text)."""
    fields = urllib.parse.parse_qs(
        raw.decode("utf-8", "surrogateescape"),
        keep_blank_values=True,
        errors="surrogateescape",
        max_num_fields=1000,
    )
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def body_api_key(media_type: str, raw: bytes) -> str | None:
    """The ``api_key`` field of a JSON or form body, if it has one."""
    try:
        if media_type == FORM_MEDIA_TYPE:
            value: object = form_fields(raw).get("api_key")
        else:
            data = loads_json(raw.decode("utf-8", "surrogateescape")) if raw else None
            value = data.get("api_key") if isinstance(data, dict) else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def media_type_of(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class Health(BaseModel):
    status: str


class ApiError(Exception):
    """An error answered as ``{"error": message, "code": code}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": message, "code": code}
    return JSONResponse(body, status_code=status, headers=headers)


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in [
        (400, "Invalid body, unsupported language pair, format or option"),
        (401, "Missing API key"),
        (403, "Wrong API key"),
        (408, "Request body not received in time"),
        (413, "Body, text, batch or request cost too large"),
        (415, "Body neither JSON nor form-encoded"),
        (429, "Rate limit exceeded"),
        (503, "All workers busy and the queue full"),
        (504, "Translation timed out"),
    ]
}


# --- Middleware, limits and the worker pool ------------------------------------------------


class GlobalRateLimit:
    """One fixed-window bucket shared by every client (``--global-rate-limit``)."""

    def __init__(self, rate: str) -> None:
        self.item = limits.parse(rate)
        self._limiter = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())

    def refuse(self) -> JSONResponse | None:
        if self._limiter.hit(self.item, "global"):
            return None
        reset = self._limiter.get_window_stats(self.item, "global").reset_time
        retry_after = max(1, int(reset - time.time() + 0.999))
        return error_response(
            429,
            "rate_limited",
            f"global rate limit exceeded: {self.item} for all clients together",
            headers={"Retry-After": str(retry_after)},
        )


class GuardMiddleware:
    """Checks the API key (401/403) and the global rate limit (429), and reads the body under
    the byte limit (413) and the body deadline (408) before the app sees the request; the app
    then reads the buffered body. A key in the ``X-API-Key`` header is checked before the body
    is read; without one, the key is the body's ``api_key`` field (LibreTranslate's way)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: tuple[str, ...],
        max_body_bytes: int,
        body_timeout_s: float = 10.0,
        global_rate_limit: str | None = None,
    ) -> None:
        self.app, self.api_keys, self.max_body_bytes = app, api_keys, max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.global_limit = GlobalRateLimit(global_rate_limit) if global_rate_limit else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        needs_key = bool(self.api_keys) and scope["path"] not in PUBLIC_PATHS
        header_key = headers.get(API_KEY_HEADER)
        refusal = self._refuse_key(header_key) if needs_key and header_key is not None else None
        refusal = refusal or self._refuse_length(headers)
        if refusal is None and self.global_limit is not None and scope["path"] not in PUBLIC_PATHS:
            refusal = self.global_limit.refuse()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await self._read_body(receive)
        except TimeoutError:
            body = error_response(
                408,
                "body_timeout",
                f"the request body did not arrive within {self.body_timeout_s:g} s",
                headers={"Connection": "close"},
            )
        if body is None:
            return  # the client left: nobody to answer
        if isinstance(body, JSONResponse):
            await body(scope, receive, send)
            return
        if needs_key and header_key is None:  # LibreTranslate clients send api_key in the body
            refusal = self._refuse_key(body_api_key(media_type_of(headers), body))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. http.disconnect while the response streams
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | JSONResponse | None:
        """The whole body; a 413 response past the byte limit; None if the client left."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _refuse_key(self, given: str | None) -> JSONResponse | None:
        if given is None:
            return error_response(
                401,
                "missing_api_key",
                "this server needs an API key: the X-API-Key header or api_key in the body",
            )
        if match_api_key(given, self.api_keys) is None:
            return error_response(403, "invalid_api_key", "the API key is not valid")
        return None

    def _refuse_length(self, headers: Headers) -> JSONResponse | None:
        declared = headers.get("content-length")
        if declared is None:
            return None
        if not (declared.isascii() and declared.isdigit()):  # "²".isdigit() is True
            return error_response(400, "invalid_request", "Content-Length must be an integer")
        return self._too_large() if int(declared) > self.max_body_bytes else None

    def _too_large(self) -> JSONResponse:
        return error_response(
            413, "body_too_large", f"the request body exceeds {self.max_body_bytes} bytes"
        )


class PoolFullError(Exception):
    """Every worker is busy and the queue is full; ``retry_after`` is a hint in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"all workers busy; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(eq=False)
class _Job:
    """One request in the scheduler: its plan, deadline, answer and progress."""

    plan: Plan
    arrived: float  # time.monotonic() at admission
    deadline: float
    future: Future[list[Translation]]
    results: list[UnitResult | None]
    taken: int = 0  # units (in plan.order) already given to a batch
    left: int = 0  # units not decoded yet
    cancelled: bool = False  # the request is answered (timeout, client gone) or failed

    def dead(self, now: float) -> bool:
        return self.cancelled or now >= self.deadline


# (sentences, requests) of every batch, for the metrics
BatchObserver = Callable[[int, int], None]


class BatchScheduler:
    """Translations in ``workers`` threads, off the event loop, batched across requests.

    A request is planned into units (its sentences; :meth:`TranslatorLike.plan`) and queued.
    A free worker takes the oldest queued request's search config and every queued unit with an
    equal config (same beams and ``max_length``; language pairs mix, since each unit carries
    its target tag), oldest requests first, up to ``batch_sentences`` units; with fewer ready it
    waits until the oldest request has waited ``batch_wait_s`` or more units arrive. A request
    larger than a batch is split over several (its units in ``plan.order``), and its answer is
    assembled when its last unit is decoded.

    Limits, as without batching: a request waits in the queue only while fewer than
    ``max_queue`` requests (plus one per idle worker) are waiting, else :class:`PoolFullError`
    (503). Each request keeps its own deadline, ``timeout_s`` after admission (queue wait
    included): past it, :meth:`translate` raises TimeoutError and the request's units that are
    still queued leave the queue. A running batch is polled before every decoder step and
    stops (:class:`SearchCancelled`) once none of its requests is alive, so work never outlives
    the last deadline in its batch by more than a step; while any request of a batch is alive
    the batch runs on, the dead requests' rows with it (the search has fixed rows), and their
    results are dropped.
    """

    def __init__(
        self,
        translator: TranslatorLike,
        *,
        workers: int,
        timeout_s: float,
        max_queue: int = 8,
        batch_sentences: int = 32,
        batch_wait_s: float = 0.005,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.translator, self.workers, self.timeout_s = translator, workers, timeout_s
        self.max_queue, self.on_batch = max_queue, on_batch
        self.batch_sentences, self.batch_wait_s = batch_sentences, batch_wait_s
        self._cond = threading.Condition()  # guards everything below and every job's fields
        self._queue: deque[_Job] = deque()  # jobs with units not yet taken, oldest first
        self._admitting = 0  # admitted, being planned
        self._busy = 0  # workers decoding a batch
        self._pending = 0  # admitted and not yet answered
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def pending(self) -> int:
        """Requests admitted and not yet answered."""
        return self._pending

    @property
    def queued(self) -> int:
        """Requests with sentences waiting for a batch."""
        return len(self._queue) + self._admitting

    async def translate(self, make_plan: Callable[[], Plan]) -> list[Translation]:
        """Admit a request (or raise :class:`PoolFullError`), plan it with ``make_plan`` (its
        errors propagate), decode it with others and return its translations; TimeoutError
        past its deadline."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the scheduler is closed")
            if self.queued >= self.max_queue + self.workers - self._busy:
                raise PoolFullError(max(1, int(self.timeout_s)))
            self._admitting += 1
            self._start_workers()
        arrived = time.monotonic()
        try:
            plan = make_plan()
        except BaseException:
            with self._cond:
                self._admitting -= 1
            raise
        future: Future[list[Translation]] = Future()
        future.set_running_or_notify_cancel()  # so that the awaiting side cannot cancel it
        deadline = arrived + self.timeout_s
        job = _Job(plan, arrived, deadline, future, [None] * len(plan.units), left=len(plan.units))
        with self._cond:
            self._admitting -= 1
            self._pending += 1
            if job.left:
                self._queue.append(job)
                self._cond.notify_all()
        if not job.left:  # blank texts only: nothing to decode
            self._finish([job])
        try:
            wrapped = asyncio.wrap_future(future)
            return await asyncio.wait_for(wrapped, max(0.0, deadline - time.monotonic()))
        except SearchCancelled:  # its batch saw the deadline pass before this coroutine did
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from None
        finally:
            self.cancel(job)

    def cancel(self, job: _Job) -> None:
        """Stop spending work on ``job`` (answered, timed out or abandoned): its queued units
        leave the queue; a batch that holds it stops once none of its requests is alive."""
        with self._cond:
            job.cancelled = True
            self._dequeue(job)
            self._resolve(job, error=SearchCancelled("the request was cancelled"))
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in list(self._queue):
                job.cancelled = True
                self._dequeue(job)
                self._resolve(job, error=SearchCancelled("the server is shutting down"))
            self._cond.notify_all()

    # --- worker side (threads) ---

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            thread = threading.Thread(
                target=self._work, name=f"lingolite-mt-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _next_batch(self) -> list[tuple[_Job, tuple[int, ...]]] | None:
        """Block until a batch is ready (see the class docstring); None once closed."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for job in [j for j in self._queue if j.dead(now)]:  # expired while queued
                    self._dequeue(job)
                    self._resolve(job, error=TimeoutError("deadline passed in the queue"))
                if not self._queue:
                    self._cond.wait()
                    continue
                head = self._queue[0]
                same = [j for j in self._queue if j.plan.config == head.plan.config]
                ready = sum(len(j.plan.order) - j.taken for j in same)
                fill_by = head.arrived + self.batch_wait_s
                if ready < self.batch_sentences and now < fill_by:
                    self._cond.wait(fill_by - now)
                    continue
                batch, room = [], self.batch_sentences
                for job in same:
                    rows = job.plan.order[job.taken : job.taken + room]
                    batch.append((job, rows))
                    job.taken += len(rows)
                    room -= len(rows)
                    if job.taken == len(job.plan.order):
                        self._queue.remove(job)
                    if not room:
                        break
                self._busy += 1
                return batch
            return None

    def _run(self, batch: list[tuple[_Job, tuple[int, ...]]]) -> None:
        jobs = [job for job, _ in batch]
        sources = [job.plan.units[u].ids for job, rows in batch for u in rows]
        if self.on_batch is not None:
            self.on_batch(len(sources), len(jobs))

        def should_stop() -> bool:
            now = time.monotonic()
            return all(job.dead(now) for job in jobs)

        try:
            results = self.translator.decode_units(
                sources,
                jobs[0].plan.config,
                num_hypotheses=max(job.plan.num_hypotheses for job in jobs),
                should_stop=should_stop,
            )
            if len(results) != len(sources):
                raise RuntimeError(f"{len(results)} results for a batch of {len(sources)}")
        except Exception as exc:  # every request of the batch gets it (ValueError: 400)
            with self._cond:
                for job in jobs:
                    job.cancelled = True
                    self._dequeue(job)
                    self._resolve(job, error=exc)
            return
        done = []
        with self._cond:
            it = iter(results)
            for job, rows in batch:
                for u in rows:
                    job.results[u] = next(it)
                job.left -= len(rows)
                if not job.left and not job.future.done():
                    done.append(job)
        self._finish(done)

    def _finish(self, jobs: Sequence[_Job]) -> None:
        """Assemble the answers of fully decoded ``jobs`` (outside the lock)."""
        for job in jobs:
            try:
                value: list[Translation] | None = assemble(
                    job.plan, [r for r in job.results if r is not None]
                )
                error: BaseException | None = None
            except Exception as exc:
                value, error = None, exc
            with self._cond:
                self._resolve(job, value, error)

    def _dequeue(self, job: _Job) -> None:
        if job in self._queue:
            self._queue.remove(job)

    def _resolve(
        self, job: _Job, value: list[Translation] | None = None, error: BaseException | None = None
    ) -> None:
        """Answer ``job`` once (later calls are no-ops); call with the lock held."""
        if job.future.done():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            assert value is not None
            job.future.set_result(value)
        self._pending -= 1


class ServerMetrics:
    """The server's Prometheus metrics, in a registry of its own (never the global one)."""

    # Sentences (or requests) per decoder batch: powers of two up to a large --batch-sentences.
    BATCH_BUCKETS: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256)

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "lingolite_http_requests", "HTTP requests by route and status", ["route", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "lingolite_http_request_duration_seconds", "Time to answer, by route", ["route"],
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )  # fmt: skip
        self.errors = Counter(
            "lingolite_errors", "Error responses by type (the error code)", ["type"], registry=r
        )
        self.sentences = Counter(
            "lingolite_sentences_translated", "Sentences translated", registry=r
        )
        self.tokens = Counter("lingolite_tokens_generated", "Tokens generated", registry=r)
        self.batch_sentences = Histogram(
            "lingolite_batch_sentences", "Sentences (units) per decoder batch", registry=r,
            buckets=self.BATCH_BUCKETS,
        )  # fmt: skip
        self.batch_requests = Histogram(
            "lingolite_batch_requests", "Requests sharing a decoder batch", registry=r,
            buckets=self.BATCH_BUCKETS,
        )  # fmt: skip

    def watch(self, scheduler: BatchScheduler) -> None:
        """Gauges of ``scheduler``'s queue."""
        queue = Gauge(
            "lingolite_queue_depth", "Requests waiting for a batch", registry=self.registry
        )
        queue.set_function(lambda: scheduler.queued)
        pending = Gauge(
            "lingolite_translations_pending", "Requests admitted and not yet answered",
            registry=self.registry,
        )  # fmt: skip
        pending.set_function(lambda: scheduler.pending)

    def observe_batch(self, sentences: int, requests: int) -> None:
        self.batch_sentences.observe(sentences)
        self.batch_requests.observe(requests)

    def count(self, translations: Sequence[Translation]) -> None:
        self.sentences.inc(sum(t.sentences for t in translations))
        self.tokens.inc(sum(t.tokens for t in translations))


class MetricsMiddleware:
    """Counts every answer by route and status (those of the guards and rate limits included:
    it is the outermost layer), times it, and counts error responses by their ``code``."""

    def __init__(self, app: ASGIApp, *, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        start = time.perf_counter()
        status, error_body = 500, bytearray()

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                error_body.extend(message.get("body", b"")[: 64 * 1024 - len(error_body)])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            if status >= 400:
                self.metrics.errors.labels(_error_code(bytes(error_body), status)).inc()


def _error_code(body: bytes, status: int) -> str:
    """The ``code`` of one of our error bodies; ``http_<status>`` for anything else."""
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.isidentifier() else f"http_{status}"


def client_bucket(address: str) -> str:
    """The rate-limit bucket of a client address: every loopback address (127.0.0.0/8, ::1) is
    one machine and shares one bucket; IPv6 addresses share one per /64 (what one host usually
    gets); IPv4 addresses have their own."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"
    if ip.is_loopback:
        return "addr:loopback"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return client_bucket(str(ip.ipv4_mapped))
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


def _rate_limit_key(api_keys: tuple[str, ...]) -> Callable[[Request], str]:
    def key(request: Request) -> str:
        index = match_api_key(request.headers.get(API_KEY_HEADER), api_keys)
        return f"key:{index}" if index is not None else client_bucket(get_remote_address(request))

    return key


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header deadline and a cap on open connections.

    ``header_timeout_s``: a connection must deliver a complete request line and headers within
    this time of opening, or of its previous response; otherwise it is closed (slow-header
    clients hold no socket for long). ``max_connections``: when a new connection would exceed
    it, the connection that has been waiting longest for its request headers (idle keep-alive
    or slow headers, never one with a request in progress) is closed to make room; if every
    connection has a request in progress, the new one is closed. Use :func:`guarded_protocol`
    to set both.
    """

    max_connections: int = 128
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if len(self.connections) > self.max_connections:
            waiting = [
                c
                for c in self.connections
                if isinstance(c, GuardedH11Protocol) and c is not self and c._waiting_for_headers()
            ]
            victim = min(waiting, key=lambda c: c._waiting_since) if waiting else self
            logger.debug("%d connections open: closing %s", len(self.connections), victim.client)
            victim.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self._waiting_for_headers():
            self._arm_header_timer()
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # a request's headers are complete
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = time.monotonic()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._waiting_since = time.monotonic()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            if self.conn.our_state is h11.IDLE and self.conn.their_state is h11.SEND_BODY:
                return  # pragma: no cover (headers done, h11 waiting for the body)
            self.transport.abort()


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass with these limits, for ``uvicorn.run(http=...)``."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"max_connections": max_connections, "header_timeout_s": header_timeout_s},
    )


class LogFloodFilter(logging.Filter):
    """Lets at most ``burst`` records per logger through in every ``window_s`` seconds.

    Under overload (thousands of asyncio "Too many open files" tracebacks, uvicorn warnings per
    refused request) the log stays readable and small: the first record after a window with
    dropped records says how many were suppressed.
    """

    def __init__(self, burst: int = 20, window_s: float = 10.0) -> None:
        super().__init__()
        self.burst, self.window_s = burst, window_s
        self._windows: dict[str, tuple[float, int, int]] = {}  # logger: (start, passed, dropped)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            start, passed, dropped = self._windows.get(record.name, (now, 0, 0))
            if now - start >= self.window_s:
                if dropped:
                    record.msg = f"[{dropped} records of this logger suppressed] {record.msg}"
                start, passed, dropped = now, 0, 0
            if passed >= self.burst:
                self._windows[record.name] = (start, passed, dropped + 1)
                return False
            self._windows[record.name] = (start, passed + 1, dropped)
            return True


def _on_rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    retry_after = exc.limit.limit.get_expiry() if exc.limit is not None else 60
    return error_response(
        429,
        "rate_limited",
        f"rate limit exceeded: {exc.detail}",
        headers={"Retry-After": str(retry_after)},
    )


def _validation_message(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


# --- The app -------------------------------------------------------------------------------


def create_app(translator: TranslatorLike, settings: ServerSettings | None = None) -> FastAPI:
    """The ASGI app serving ``translator`` (already loaded and verified) under ``settings``."""
    settings = settings or ServerSettings()
    settings.validate()
    languages = sorted(translator.languages)
    metrics = ServerMetrics()
    scheduler = BatchScheduler(
        translator,
        workers=settings.max_concurrency,
        timeout_s=settings.timeout_s,
        max_queue=settings.max_queue,
        batch_sentences=settings.batch_sentences,
        batch_wait_s=settings.batch_wait_ms / 1000,
        on_batch=metrics.observe_batch,
    )
    metrics.watch(scheduler)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        scheduler.close()

    app = FastAPI(
        title="LingoLite",
        version="1",
        summary="Local multilingual translation (LibreTranslate-like API)",
        docs_url=None,  # the docs pages load scripts from a CDN; the schema is enough
        redoc_url=None,
        lifespan=lifespan,
    )

    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", _validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "internal server error (logged)")

    app.add_middleware(
        GuardMiddleware,
        api_keys=settings.api_keys,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        global_rate_limit=settings.global_rate_limit,
    )
    app.state.scheduler = scheduler
    if settings.rate_limit is not None:
        limiter = Limiter(
            key_func=_rate_limit_key(settings.api_keys),
            default_limits=[settings.rate_limit],
            storage_uri="memory://",
            strategy="fixed-window",
        )
        # slowapi also reads RATELIMIT_* from the environment and ./.env: keep it on regardless.
        limiter.enabled = True
        app.state.limiter = limiter
        app.add_exception_handler(RateLimitExceeded, _on_rate_limited)
        app.add_middleware(SlowAPIASGIMiddleware)  # before keys and body are read
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: sees every answer

    def check(texts: list[str], source: str, target: str) -> None:
        bad_text = text_problems(texts, "q")
        if bad_text:
            raise ApiError(400, "invalid_text", "; ".join(bad_text[:10]))
        problems = [
            f"{role} language {code!r} is not supported"
            for role, code in (("source", source), ("target", target))
            if code not in languages
        ]
        if problems:
            raise ApiError(
                400,
                "unsupported_language",
                "; ".join(problems) + f"; supported: {', '.join(languages)}",
            )
        if source == target:
            raise ApiError(
                400,
                "unsupported_language",
                f"source and target are both {source!r}; pick two different languages",
            )
        if f"{source}-{target}" not in translator.directions:
            raise ApiError(
                400,
                "unsupported_language",
                f"direction {source}-{target} was not trained; this model translates "
                f"{', '.join(translator.directions)}",
            )
        if len(texts) > settings.max_batch:
            raise ApiError(
                413,
                "batch_too_large",
                f"{len(texts)} texts in one request; the limit is {settings.max_batch}",
            )
        long = [f"q[{i}] has {len(t)}" for i, t in enumerate(texts) if len(t) > settings.max_chars]
        if long:
            raise ApiError(
                413,
                "text_too_long",
                f"{', '.join(long[:10])} characters; the limit is {settings.max_chars} per text",
            )

    def check_cost(texts: list[str], source: str, beams: int, max_length: int | None) -> None:
        length = min(max_length or translator.max_tgt_len, translator.max_tgt_len)
        sentences = sum(
            sum(1 for part in segment(t, source) if part.is_sentence) for t in texts if t.strip()
        )
        cost = sentences * beams * length
        if cost > settings.max_request_cost:
            raise ApiError(
                413,
                "request_too_expensive",
                f"this request asks for {cost} decoder row-steps ({sentences} sentences x "
                f"beam_size {beams} x max_length {length}); the limit is "
                f"{settings.max_request_cost}: send fewer texts, a smaller beam_size or a "
                "smaller max_length",
            )

    @app.post(
        "/translate",
        responses=ERROR_RESPONSES,
        response_model_exclude_none=True,
        openapi_extra=TRANSLATE_BODY,
    )
    async def translate(request: Request) -> TranslateResponse:
        """Translate one text or a batch of texts from ``source`` to ``target`` (a JSON or
        form-encoded body, like LibreTranslate's)."""
        body = parse_translate_request(media_type_of(request.headers), await request.body())
        texts = [body.q] if isinstance(body.q, str) else body.q
        if body.format != "text":
            raise ApiError(
                400,
                "unsupported_format",
                f"format {body.format!r} is not supported; send plain text with format 'text' "
                "(HTML would be translated tags and all)",
            )
        check(texts, body.source, body.target)
        beams = max(body.beam_size, body.alternatives + 1)
        check_cost(texts, body.source, beams, body.max_length)

        def plan() -> Plan:
            return translator.plan(
                texts,
                body.source,
                body.target,
                num_beams=beams,
                num_hypotheses=body.alternatives + 1,
                max_length=body.max_length,
            )

        try:
            out = await scheduler.translate(plan)
        except PoolFullError as exc:
            raise ApiError(
                503,
                "busy",
                f"all {settings.max_concurrency} workers are busy and {settings.max_queue} "
                "requests are waiting for a batch; retry later",
                headers={"Retry-After": str(exc.retry_after)},
            ) from None
        except (TimeoutError, SearchCancelled):
            raise ApiError(
                504,
                "timeout",
                f"the translation did not finish within "
                f"{settings.timeout_s:g} s; send fewer or shorter texts",
            ) from None
        except ValueError as exc:  # the translator's documented way to reject an input
            raise ApiError(400, "invalid_request", str(exc)) from exc
        metrics.count(out)
        alternatives = [[a.text for a in t.alternatives] for t in out]
        if isinstance(body.q, str):
            return TranslateResponse(
                translatedText=out[0].text,
                alternatives=alternatives[0] if body.alternatives else None,
                truncated=out[0].truncated,
            )
        return TranslateResponse(
            translatedText=[t.text for t in out],
            alternatives=alternatives if body.alternatives else None,
            truncated=[t.truncated for t in out],
        )

    @app.get("/languages", responses=ERROR_RESPONSES)
    async def list_languages() -> list[Language]:
        """The source languages and, for each, the targets it was trained to translate into."""
        return [
            Language(
                code=code,
                name=LANGUAGE_NAMES.get(code, code),
                targets=[t for t in languages if f"{code}-{t}" in translator.directions],
            )
            for code in languages
            if any(d.startswith(f"{code}-") for d in translator.directions)
        ]

    @app.get("/health")
    async def health() -> Health:
        """Liveness: the model is loaded and the server answers."""
        return Health(status="ok")

    if settings.metrics:

        @app.get("/metrics", response_class=Response, responses=ERROR_RESPONSES)
        async def prometheus_metrics() -> Response:
            """Prometheus metrics (text exposition format)."""
            return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if settings.rate_limit is not None:
        app.state.limiter.exempt(health)
    app.state.metrics = metrics
    return app


# --- Command line --------------------------------------------------------------------------


def build_parser(prog: str = "python -m runtime.server") -> argparse.ArgumentParser:
    d = ServerSettings()
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", type=Path, required=True, help="exported artifact folder")
    p.add_argument(
        "--backend",
        choices=SERVER_BACKENDS,
        default=SERVER_BACKENDS[0],
        help="runtime of the artifact folder (default %(default)s)",
    )
    p.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    p.add_argument(
        "--host",
        default=d.host,
        help="address to bind; anything but loopback needs API keys (default %(default)s)",
    )
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument(
        "--api-keys-file",
        type=Path,
        help=f"one key per line; {API_KEYS_ENV} (comma-separated) adds more",
    )
    p.add_argument(
        "--rate-limit",
        default=d.rate_limit,
        help="per key or client address and endpoint, e.g. 60/minute; 'off' disables "
        "(default %(default)s)",
    )
    p.add_argument(
        "--global-rate-limit",
        default=d.global_rate_limit,
        help="all clients together; 'off' disables (default %(default)s)",
    )
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    p.add_argument("--max-chars", type=int, default=d.max_chars, help="characters per text")
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="texts per request")
    p.add_argument(
        "--max-request-cost",
        type=int,
        default=d.max_request_cost,
        help="most sentences x beams x max_length per request (default %(default)s)",
    )
    p.add_argument("--timeout-s", type=float, default=d.timeout_s)
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=d.max_concurrency,
        help="translations running at once (default %(default)s)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help="requests waiting for a batch, besides one per idle worker; more get 503 "
        "(default %(default)s)",
    )
    p.add_argument(
        "--batch-sentences",
        type=int,
        default=d.batch_sentences,
        help="most sentences decoded at once, across requests with the same beam_size and "
        "max_length; 1 turns batching off (default %(default)s)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.batch_wait_ms,
        help="longest wait for a batch to fill, from the oldest waiting request's arrival "
        "(default %(default)s)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        help="open connections at most (default %(default)s)",
    )
    p.add_argument(
        "--header-timeout-s",
        type=float,
        default=d.header_timeout_s,
        help="time to receive request headers (default %(default)s)",
    )
    p.add_argument(
        "--body-timeout-s",
        type=float,
        default=d.body_timeout_s,
        help="time to receive the request body (default %(default)s)",
    )
    p.add_argument(
        "--keep-alive-s",
        type=int,
        default=d.keep_alive_s,
        help="idle keep-alive connections close after this (default %(default)s)",
    )
    p.add_argument(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="do not serve Prometheus metrics at /metrics (served by default, behind the API "
        "keys when keys are configured)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads per translation (default: the runtime's)",
    )
    return p


def _rate(value: str) -> str | None:
    return None if value.strip().lower() in ("off", "none") else value


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerSettings:
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        api_keys=load_api_keys(args.api_keys_file, environ.get(API_KEYS_ENV)),
        rate_limit=_rate(args.rate_limit),
        global_rate_limit=_rate(args.global_rate_limit),
        max_body_bytes=args.max_body_bytes,
        max_chars=args.max_chars,
        max_batch=args.max_batch,
        max_request_cost=args.max_request_cost,
        timeout_s=args.timeout_s,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        batch_sentences=args.batch_sentences,
        batch_wait_ms=args.batch_wait_ms,
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout_s,
        body_timeout_s=args.body_timeout_s,
        keep_alive_s=args.keep_alive_s,
        metrics=args.metrics,
    )
    settings.validate()
    return settings


def load_translator(
    folder: Path, precision: str, threads: int | None, backend: str = SERVER_BACKENDS[0]
) -> Translator:
    """Load and verify ``folder`` once (manifest, hashes, tokenizer) for ``backend``."""
    if backend not in SERVER_BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {SERVER_BACKENDS}")
    return Translator.from_manifest(load_manifest(folder), backend, precision, threads=threads)


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """The ``uvicorn.run`` keyword arguments that enforce the connection limits of ``settings``."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": guarded_protocol(settings.max_connections, settings.header_timeout_s),
        # A backstop: requests beyond this many open connections or running tasks get uvicorn's
        # 503. The protocol keeps connections at max_connections, but a burst of accepts counts
        # connections it has aborted until their connection_lost callbacks run, so the
        # backstop leaves that much headroom (measured: a 44-connection burst against a cap of
        # 16 on a loaded 2-core machine met 503s with the backstop one above the cap).
        "limit_concurrency": 2 * settings.max_connections + 1,
        "timeout_keep_alive": settings.keep_alive_s,
        "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers
        "backlog": settings.max_connections,
        # Rate limits key on the real peer address, not a spoofable header.
        "proxy_headers": False,
        # No "server: uvicorn" (it names the stack to a scanner) and no "date" on responses.
        "server_header": False,
        "date_header": False,
        "log_config": None,  # keep main()'s logging and its flood filter
        "log_level": "info",
    }


def configure_logging() -> None:
    """INFO logging to stderr, every handler behind a :class:`LogFloodFilter`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    flood = LogFloodFilter()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, LogFloodFilter) for f in handler.filters):
            handler.addFilter(flood)


def main(argv: Sequence[str] | None = None, prog: str = "python -m runtime.server") -> None:
    configure_logging()
    args = build_parser(prog).parse_args(argv)
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"error: --threads must be >= 1, got {args.threads}")
    try:
        settings = settings_from_args(args, os.environ)
    except ServerConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    if not is_loopback(settings.host):
        logger.warning(
            "binding %s: the server is reachable from other machines (API keys "
            "required: %d configured)",
            settings.host,
            len(settings.api_keys),
        )

    try:
        translator = load_translator(args.artifacts, args.precision, args.threads, args.backend)
    except (ValueError, OSError) as exc:  # ArtifactError, TokenizerError, ... name the problem
        raise SystemExit(f"error: {exc}") from None
    logger.info(
        "loaded %s (%s %s): languages %s",
        args.artifacts,
        args.backend,
        args.precision,
        ", ".join(translator.languages),
    )
    app = create_app(translator, settings)
    uvicorn.run(app, **uvicorn_options(settings))


if __name__ == "__main__":
    main()
