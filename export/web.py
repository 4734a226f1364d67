"""Build the browser demo (``web_demo/``) into a self-contained static site, and serve one.

``python -m export.web --artifacts DIR --out SITE`` checks the ONNX artifact folder (manifest
format, every file's size and sha256, at least one ``onnxruntime`` variant) and writes ``SITE``::

    index.html app.js style.css lib/*.js       the page (web_demo/)
    vendor/ort/                                ONNX Runtime Web: its ES module, loader and .wasm
    vendor/sentencex/index.js                  the sentence segmenter
    vendor/NOTICE.txt                          versions and licenses of the vendored packages
    artifacts/                                 manifest.json and every file it lists

``--precisions`` picks the ONNX variants the site carries (default: ``int8,fp32``, those the
folder has). The site's ``manifest.json`` is the folder's, less the other variants and the files
only they name, so the page offers what it carries. int4 is left out unless asked for: it runs in
ONNX Runtime Web, but its 4-bit MatMul kernel there is about 9x slower than int8 (README,
"Browser").

The vendored files come from ``web_demo/node_modules`` (``npm ci --prefix web_demo``, which
``make setup`` runs), so the page fetches nothing from the internet. Like the other exporters the
site is built in a temporary folder renamed at the end; a non-empty ``SITE`` is refused unless
``--force``, and ``--force`` replaces only an earlier site (one holding ``vendor/NOTICE.txt``).

``python -m export.web --serve SITE [--port 8000]`` serves a built site on 127.0.0.1 with the MIME
types a browser insists on (``application/wasm`` for WebAssembly streaming compilation,
``text/javascript`` for ES modules).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from lingolite.utils import atomic_directory, replace_refusal
from runtime.manifest import MANIFEST, ArtifactError, load_manifest

log = logging.getLogger(__name__)

ROOT: Final = Path(__file__).resolve().parents[1]
WEB_DEMO: Final = ROOT / "web_demo"
PAGE_FILES: Final = ("index.html", "app.js", "style.css")
# A folder holding this is an earlier site, which --force may replace (never anything else).
SITE_MARKERS: Final = ("vendor/NOTICE.txt",)
# (npm package, file inside it, path in the site)
VENDOR: Final = (
    ("onnxruntime-web", "dist/ort.wasm.min.mjs", "vendor/ort/ort.wasm.min.mjs"),
    ("onnxruntime-web", "dist/ort-wasm-simd-threaded.mjs", "vendor/ort/ort-wasm-simd-threaded.mjs"),
    (
        "onnxruntime-web",
        "dist/ort-wasm-simd-threaded.wasm",
        "vendor/ort/ort-wasm-simd-threaded.wasm",
    ),
    ("sentencex", "dist/esm/index.js", "vendor/sentencex/index.js"),
)
MIME_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".model": "application/octet-stream",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


# The precisions a site carries unless --precisions says otherwise (int4: see the docstring).
BROWSER_PRECISIONS: Final = ("int8", "fp32")


class WebBuildError(ValueError):
    """The site cannot be built; the message lists every problem."""


def _package_json(package: str, node_modules: Path) -> dict[str, Any]:
    data = json.loads((node_modules / package / "package.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise WebBuildError(f"{node_modules / package / 'package.json'} is not a JSON object")
    return data


def check_inputs(artifacts: Path, node_modules: Path) -> list[str]:
    """Every problem with the artifact folder and the installed npm packages, at once."""
    problems = []
    try:
        manifest = load_manifest(artifacts)
    except ArtifactError as exc:
        problems.append(str(exc))
    else:
        if not any(v.backend == "onnxruntime" for v in manifest.variants.values()):
            problems.append(
                f"{artifacts} has no onnxruntime variant (export it with python -m export.onnx)"
            )
        if manifest.data["tokenizer"].get("vocab") is None:
            problems.append(f"{artifacts}/{MANIFEST} names no tokenizer vocab (vocab.json)")
    missing = [str(node_modules / pkg / path) for pkg, path, _ in VENDOR]
    missing = [p for p in missing if not Path(p).is_file()]
    if missing:
        problems.append(
            f"npm packages are not installed ({', '.join(missing)} missing): "
            f"run `npm ci --prefix {WEB_DEMO}`"
        )
    return problems


def site_manifest(data: dict[str, Any], precisions: Sequence[str] | None) -> dict[str, Any]:
    """The manifest of a site carrying the ONNX variants of ``precisions`` (None: those of
    :data:`BROWSER_PRECISIONS` the folder has): the other variants are dropped, and with them
    the files that only they name. Raises :class:`WebBuildError` naming what the folder has."""
    onnx = {n: v for n, v in data["variants"].items() if v.get("backend") == "onnxruntime"}
    have = [v["precision"] for v in onnx.values()]
    if precisions is None:
        precisions = [p for p in BROWSER_PRECISIONS if p in have]
        if not precisions:
            raise WebBuildError(
                f"the folder has no {' or '.join(BROWSER_PRECISIONS)} ONNX variant (it has "
                f"{have}); pass --precisions to build with those"
            )
    missing = [p for p in precisions if p not in have]
    if missing or not precisions:
        raise WebBuildError(
            f"--precisions {list(precisions)}: the folder's ONNX variants are {have}"
        )
    kept = {n: v for n, v in onnx.items() if v["precision"] in precisions}
    named = {f for v in kept.values() for f in v["files"].values()}
    dropped = {f for n, v in data["variants"].items() if n not in kept for f in v["files"].values()}
    files = {f: entry for f, entry in data["files"].items() if f in named or f not in dropped}
    return {**data, "variants": kept, "files": files}


def build_site(artifacts: Path, out: Path, *, force: bool = False, web_demo: Path = WEB_DEMO,
               precisions: Sequence[str] | None = None) -> Path:  # fmt: skip
    """Write the site for ``artifacts`` into ``out`` (atomically), carrying the ONNX variants of
    ``precisions`` (:func:`site_manifest`); returns ``out``."""
    node_modules = web_demo / "node_modules"
    problems = check_inputs(artifacts, node_modules)
    data: dict[str, Any] | None = None
    if not problems:
        try:
            data = site_manifest(load_manifest(artifacts).data, precisions)
        except WebBuildError as exc:
            problems.append(str(exc))
    if artifacts.resolve() == out.resolve() or artifacts.resolve() in out.resolve().parents:
        problems.append(f"--out {out} must not be inside --artifacts {artifacts}")
    refusal = replace_refusal(out, force=force, markers=SITE_MARKERS)
    if refusal is not None:
        problems.append(refusal)
    if problems:
        raise WebBuildError("cannot build the web demo: " + "; ".join(problems))
    assert data is not None, "no problems means the manifest was read"
    with atomic_directory(out, force=force, markers=SITE_MARKERS) as tmp:
        for name in PAGE_FILES:
            shutil.copy2(web_demo / name, tmp / name)
        shutil.copytree(web_demo / "lib", tmp / "lib")
        notice = ["Third-party packages in this folder (from npm, see web_demo/package-lock.json):"]
        for package, path, target in VENDOR:
            (tmp / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(node_modules / package / path, tmp / target)
        for package in sorted({pkg for pkg, _, _ in VENDOR}):
            meta = _package_json(package, node_modules)
            notice.append(f"- {package} {meta.get('version')} ({meta.get('license')})")
        (tmp / "vendor" / "NOTICE.txt").write_text("\n".join(notice) + "\n", encoding="utf-8")
        site_artifacts = tmp / "artifacts"
        site_artifacts.mkdir()
        for name in data["files"]:
            target = site_artifacts / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(artifacts / name, target)
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        (site_artifacts / MANIFEST).write_text(text, encoding="utf-8")
        load_manifest(site_artifacts)  # the copy verifies like the original
    precisions = sorted(v["precision"] for v in data["variants"].values())
    log.info("wrote the web demo for %s (%s) to %s", artifacts, ", ".join(precisions), out)
    return out


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the MIME types browsers require; no caching, quiet logs."""

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        return MIME_TYPES.get(Path(path).suffix.lower()) or super().guess_type(path)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def make_server(site: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.HTTPServer:
    """A threaded HTTP server for ``site`` (port 0 picks a free one); call ``serve_forever``."""
    if not (site / "index.html").is_file():
        raise WebBuildError(f"{site} is not a built site (no index.html); build it with --out")
    handler = functools.partial(SiteHandler, directory=str(site))
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None, prog: str = "python -m export.web") -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--artifacts", type=Path, help="ONNX artifact folder (python -m export.onnx)"
    )
    parser.add_argument("--out", type=Path, help="site folder to write")
    parser.add_argument("--force", action="store_true", help="replace an earlier site in --out")
    parser.add_argument(
        "--precisions",
        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
        help="comma-separated ONNX precisions the site carries (default: int8,fp32, those the "
        "folder has; int4 runs about 9x slower than int8 in browsers)",
    )
    parser.add_argument("--serve", type=Path, metavar="SITE", help="serve a built site instead")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (127.0.0.1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.serve is not None:
        if args.artifacts or args.out:
            parser.error("--serve SITE serves a built site; build with --artifacts/--out first")
        server = make_server(args.serve, port=args.port)
        log.info("serving %s on http://127.0.0.1:%d/ (Ctrl-C stops)", args.serve, args.port)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
        return
    if args.artifacts is None or args.out is None:
        parser.error("--artifacts and --out are required (or --serve SITE)")
    try:
        build_site(args.artifacts, args.out, force=args.force, precisions=args.precisions)
    except (WebBuildError, FileExistsError) as exc:
        raise SystemExit(f"error: {exc}") from exc


if __name__ == "__main__":
    main()
