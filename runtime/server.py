"""A local translation server (FastAPI + uvicorn), safe by default. PyTorch-free.

``python -m runtime.server --artifacts DIR [--backend onnxruntime|ctranslate2]`` loads and
verifies the artifact folder once, then serves a LibreTranslate-like JSON API:

==========================  ================================================================
``POST /translate``         ``{"q": str | [str], "source": "en", "target": "de",
                            "beam_size": 1, "max_length": null}`` ->
                            ``{"translatedText": str | [str], "truncated": bool | [bool]}``
                            (``num_beams`` is accepted as an alias of ``beam_size``); texts are
                            translated sentence by sentence, breaks kept; ``truncated`` flags a
                            text with a sentence that reached ``max_length`` without ending
``GET /languages``          ``[{"code": "de", "name": "German", "targets": ["en", ...]}, ...]``:
                            only the directions the model was trained on
``GET /health``             ``{"status": "ok"}`` (no API key, no rate limit)
``GET /openapi.json``       the OpenAPI schema (no API key)
==========================  ================================================================

No endpoint loads, swaps or writes models or files.

Every error is ``{"error": {"code": str, "message": str}}`` with these statuses:

=====  =====================================================================================
400    unknown language or a direction the model was not trained on (the message names it and
       the supported ones),
       or an option the translator rejects (e.g. ``max_length`` above the model's limit)
401    ``X-API-Key`` missing (when keys are configured)
403    ``X-API-Key`` wrong
404    unknown path; 405 wrong method
413    request body over ``--max-body-bytes`` (counted on the bytes actually received, so a
       missing or false Content-Length cannot bypass it), a text over ``--max-chars``
       characters, or more than ``--max-batch`` texts
422    a body that is not valid JSON or does not match the schema (code ``invalid_request``)
429    over ``--rate-limit`` (per API key, or per client address without one; per endpoint)
500    a bug in the server (logged); bad input never produces it
504    the translation (queue wait included) took longer than ``--timeout-s``
=====  =====================================================================================

Safety: the server binds 127.0.0.1 unless ``--host`` names another address; a non-loopback
address logs a warning and refuses to start without API keys. Keys (``--api-keys-file``, one per
line, and/or ``LINGOLITE_API_KEYS``, comma-separated) are compared in constant time against every
key. Translations run in a pool of ``--max-concurrency`` worker threads, off the event loop;
further requests queue. A request that times out stops waiting, but a translation that already
started finishes in its worker, so at most ``--max-concurrency`` translations ever run at once.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import ipaddress
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Protocol, TypeVar

import limits
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIASGIMiddleware
from slowapi.util import get_remote_address
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.manifest import load_manifest
from runtime.translator import Translation, Translator

logger = logging.getLogger("runtime.server")  # also when run as __main__

T = TypeVar("T")

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

LANGUAGE_NAMES: Final = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "hi": "Hindi",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese",
}  # fmt: skip


class TranslatorLike(Protocol):
    """What the server needs of ``runtime.translator.Translator`` (tests pass fakes)."""

    @property
    def languages(self) -> Sequence[str]: ...

    @property
    def directions(self) -> Sequence[str]:
        """The trained directions ("en-de", ...): the only ones served."""
        ...

    def translate_detailed(
        self,
        texts: Sequence[str],
        src: str,
        tgt: str,
        *,
        num_beams: int = 1,
        max_length: int | None = None,
        batch_size: int = 32,
    ) -> list[Translation]: ...


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
    max_body_bytes: int = 256 * 1024  # fits max_batch texts of max_chars \u-escaped characters
    max_chars: int = 1000
    max_batch: int = 32
    timeout_s: float = 30.0
    max_concurrency: int = 2

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
        if self.rate_limit is not None:
            try:
                limits.parse(self.rate_limit)
            except ValueError:
                problems.append(
                    f"--rate-limit must look like '60/minute' or be 'off', got {self.rate_limit!r}"
                )
        for name in ("max_body_bytes", "max_chars", "max_batch", "max_concurrency"):
            if getattr(self, name) < 1:
                problems.append(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if not self.timeout_s > 0:
            problems.append(f"--timeout-s must be > 0, got {self.timeout_s}")
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


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class TranslateRequest(BaseModel):
    model_config = ConfigDict(strict=True)

    q: str | Annotated[list[str], Field(min_length=1)] = Field(
        description="A text, or a non-empty list of texts translated as one batch."
    )
    source: str = Field(min_length=1, max_length=MAX_LANGUAGE_CODE_CHARS, examples=["en"])
    target: str = Field(min_length=1, max_length=MAX_LANGUAGE_CODE_CHARS, examples=["de"])
    beam_size: int = Field(
        default=1,
        ge=1,
        le=MAX_BEAMS,
        validation_alias=AliasChoices("beam_size", "num_beams"),
        description="1 for greedy search; more for beam search. Alias: num_beams.",
    )
    max_length: int | None = Field(
        default=None, ge=1, description="Most tokens per translation (default: the model's)."
    )


class TranslateResponse(BaseModel):
    translatedText: str | list[str]  # LibreTranslate's field name
    truncated: bool | list[bool] = Field(
        description="Per text: a sentence reached max_length without ending (its translation "
        "is cut short)."
    )


class Language(BaseModel):
    code: str
    name: str
    targets: list[str]


class Health(BaseModel):
    status: str


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in [
        (400, "Unsupported language pair or option"),
        (401, "Missing API key"),
        (403, "Wrong API key"),
        (413, "Body, text or batch too large"),
        (422, "Body is not valid JSON or does not match the schema"),
        (429, "Rate limit exceeded"),
        (504, "Translation timed out"),
    ]
}


# --- Middleware, limits and the worker pool ------------------------------------------------


class GuardMiddleware:
    """Checks the API key (401/403) and reads the body under the byte limit (413) before the
    app sees the request; the app then reads the buffered body."""

    def __init__(self, app: ASGIApp, *, api_keys: tuple[str, ...], max_body_bytes: int) -> None:
        self.app, self.api_keys, self.max_body_bytes = app, api_keys, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refuse_key(headers, scope["path"]) or self._refuse_length(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large()(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # e.g. http.disconnect while the response streams
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _refuse_key(self, headers: Headers, path: str) -> JSONResponse | None:
        if not self.api_keys or path in PUBLIC_PATHS:
            return None
        given = headers.get(API_KEY_HEADER)
        if given is None:
            return error_response(401, "missing_api_key", "this server needs an X-API-Key header")
        if match_api_key(given, self.api_keys) is None:
            return error_response(403, "invalid_api_key", "the X-API-Key is not valid")
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


class TranslationPool:
    """Runs translations in ``max_concurrency`` worker threads; further calls queue.

    A call that has not finished after ``timeout_s`` (queue wait included) raises TimeoutError:
    still queued, it is dropped; already running, it finishes in its worker and the result is
    discarded. So the number of running translations never exceeds ``max_concurrency``, timeouts
    included (``anyio.to_thread.run_sync(abandon_on_cancel=True)`` would free its limiter slot
    while the abandoned thread still runs).
    """

    def __init__(self, max_concurrency: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="lingolite-mt")

    async def run(self, fn: Callable[[], T]) -> T:
        # Cancelling the wrapped future (on timeout) cancels the pool's future if still queued.
        future = asyncio.wrap_future(self._executor.submit(fn))
        return await asyncio.wait_for(future, self.timeout_s)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _rate_limit_key(api_keys: tuple[str, ...]) -> Callable[[Request], str]:
    def key(request: Request) -> str:
        index = match_api_key(request.headers.get(API_KEY_HEADER), api_keys)
        return f"key:{index}" if index is not None else f"addr:{get_remote_address(request)}"

    return key


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
    pool = TranslationPool(settings.max_concurrency, settings.timeout_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.close()

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
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc.errors()))

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
        GuardMiddleware, api_keys=settings.api_keys, max_body_bytes=settings.max_body_bytes
    )
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
        app.add_middleware(SlowAPIASGIMiddleware)  # outermost: before keys and body are read

    def check(texts: list[str], source: str, target: str) -> None:
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

    @app.post("/translate", responses=ERROR_RESPONSES)
    async def translate(body: TranslateRequest) -> TranslateResponse:
        """Translate one text or a batch of texts from ``source`` to ``target``."""
        texts = [body.q] if isinstance(body.q, str) else body.q
        check(texts, body.source, body.target)
        job = functools.partial(
            translator.translate_detailed,
            texts,
            body.source,
            body.target,
            num_beams=body.beam_size,
            max_length=body.max_length,
        )
        try:
            out = await pool.run(job)
        except TimeoutError:
            raise ApiError(
                504,
                "timeout",
                f"the translation did not finish within "
                f"{settings.timeout_s:g} s; send fewer or shorter texts",
            ) from None
        except ValueError as exc:  # the translator's documented way to reject an input
            raise ApiError(400, "invalid_request", str(exc)) from exc
        if isinstance(body.q, str):
            return TranslateResponse(translatedText=out[0].text, truncated=out[0].truncated)
        return TranslateResponse(
            translatedText=[t.text for t in out], truncated=[t.truncated for t in out]
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

    if settings.rate_limit is not None:
        app.state.limiter.exempt(health)
    return app


# --- Command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = ServerSettings()
    p = argparse.ArgumentParser(prog="python -m runtime.server", description=__doc__.split("\n")[0])
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
        help="per key or client address and endpoint, e.g. 60/minute; 'off' disables",
    )
    p.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    p.add_argument("--max-chars", type=int, default=d.max_chars, help="characters per text")
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="texts per request")
    p.add_argument("--timeout-s", type=float, default=d.timeout_s)
    p.add_argument(
        "--max-concurrency",
        type=int,
        default=d.max_concurrency,
        help="translations running at once; more requests queue",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads per translation (default: the runtime's)",
    )
    return p


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> ServerSettings:
    rate = None if args.rate_limit.strip().lower() in ("off", "none") else args.rate_limit
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        api_keys=load_api_keys(args.api_keys_file, environ.get(API_KEYS_ENV)),
        rate_limit=rate,
        max_body_bytes=args.max_body_bytes,
        max_chars=args.max_chars,
        max_batch=args.max_batch,
        timeout_s=args.timeout_s,
        max_concurrency=args.max_concurrency,
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


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
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
    # proxy_headers=False: rate limits key on the real peer address, not a spoofable header.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


if __name__ == "__main__":
    main()
