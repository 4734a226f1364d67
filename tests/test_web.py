"""The browser demo (``web_demo/``): its Node unit tests, the site build, and a real headless Chromium.

The Node tests check the JS tokenizer against the committed goldens and the JS search against the
recorded Python runs of ``scripts/make_android_goldens.py`` (the Java core's goldens). The browser
test exports the shipped model once, builds the site with ``export.web``, serves it on 127.0.0.1,
drives the page with Playwright (Debian's chromium, ``--no-sandbox``) and requires the Python
runtime's exact text for fp32 (greedy and beam 4; int8: at least 80% of the sentences, since ONNX
Runtime's int8 kernels differ between x86 and WebAssembly), and that no request left 127.0.0.1.
Nothing is skipped: a missing node, npm package or chromium fails with the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from export.common import ExportOptions
from export.onnx import export_onnx
from export.vocab import export_vocab
from export.web import VENDOR, WebBuildError, build_site, make_server, site_manifest
from runtime.manifest import load_manifest
from runtime.translate import main as translate_main
from runtime.translator import Translator
from tests.marian_fixtures import SENTENCES as MARIAN_SENTENCES
from tests.marian_goldens import write_marian_golden

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web_demo"
PRETRAINED = ROOT / "pretrained" / "lingolite-tiny-multi30k"
CHROMIUM = Path("/usr/bin/chromium")
SETUP = "make setup (apt-get install -y chromium; npm ci --prefix web_demo)"

# Sentences per direction (test_2016_flickr style captions; no data folder needed).
SENTENCES = {
    ("en", "de"): ["Two dogs play in the snow.", "A little girl climbs into a wooden playhouse.",
                   "A man in a blue shirt is standing on a ladder cleaning windows."],
    ("de", "en"): ["Ein Mann fährt Fahrrad auf der Straße.", "Zwei Frauen sitzen auf einer Bank."],
    ("en", "fr"): ["A woman is reading a book in the park.", "Three children are running on the beach."],
    ("fr", "en"): ["Un homme avec un chapeau orange regardant quelque chose.",
                   "Deux chiens jouent dans l'herbe."],
}  # fmt: skip
PARAGRAPH = "Two dogs play in the snow. A man rides a bike.\nA woman reads a book."
# One sentence longer than the shipped model's 128 source tokens: cut into clauses, as in Python.
LONG = " ".join(["A man in a red jacket, a woman with a small dog,"] * 12) + " and a child wait."


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH; run {SETUP}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def node_modules() -> Path:
    _tool("node")
    missing = [f"{pkg}/{path}" for pkg, path, _ in VENDOR
               if not (WEB / "node_modules" / pkg / path).is_file()]  # fmt: skip
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core")
    if missing:
        pytest.fail(f"npm packages missing ({missing}); run {SETUP}", pytrace=False)
    return WEB / "node_modules"


@pytest.fixture(scope="session")
def shipped_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model exported to ONNX fp32 + int8 (a few minutes), once per session."""
    if not (PRETRAINED / "config.json").is_file():
        pytest.fail(f"the shipped model is not at {PRETRAINED}", pytrace=False)
    out = tmp_path_factory.mktemp("web_onnx") / "tiny-onnx"
    return export_onnx(ExportOptions(out=out, checkpoint=PRETRAINED), quantize="both")


@pytest.fixture(scope="session")
def site(shipped_onnx: Path, node_modules: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_site(shipped_onnx, tmp_path_factory.mktemp("web") / "site")


@pytest.fixture(scope="session")
def served(site: Path) -> Iterator[str]:
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _search_golden(out: Path) -> Path:
    """The Java core's recorded search runs, written by the same code its test uses."""
    spec = importlib.util.spec_from_file_location(
        "make_android_goldens", ROOT / "scripts" / "make_android_goldens.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return Path(module.search_golden(out))


def test_node_unit_tests(node_modules: Path, tmp_path: Path) -> None:
    """``node --test``: tokenizer ids/decoding (14k golden sentences), the Marian tokenizer against
    Python's MarianTokenizer, search replay, segmentation."""
    vocab = export_vocab(PRETRAINED, tmp_path / "vocab")
    env = {**os.environ, "LINGOLITE_WEB_VOCAB": str(vocab),
           "LINGOLITE_SEARCH_GOLDEN": str(_search_golden(tmp_path)),
           "LINGOLITE_MARIAN_GOLDEN": str(write_marian_golden(tmp_path / "marian"))}  # fmt: skip
    tests = sorted(str(p.relative_to(WEB)) for p in (WEB / "test").glob("*.test.mjs"))
    assert len(tests) >= 3, tests
    run = subprocess.run([_tool("node"), "--test", *tests], cwd=WEB, env=env,
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "# fail 0" in report and "# skipped 0" in report, report[-3000:]


def test_build_refuses_bad_inputs(shipped_onnx: Path, node_modules: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(shipped_onnx, tmp_path / "broken"))
    with (broken / "vocab.json").open("ab") as fh:
        fh.write(b" ")
    empty_demo = tmp_path / "empty_demo"
    empty_demo.mkdir()
    with pytest.raises(WebBuildError) as info:
        build_site(broken, tmp_path / "site", web_demo=empty_demo)
    message = str(info.value)
    assert "vocab.json" in message and "npm ci" in message, message
    assert not (tmp_path / "site").exists()

    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(WebBuildError, match="--force"):
        build_site(shipped_onnx, out)
    with pytest.raises(WebBuildError, match="holds no earlier LingoLite export"):
        build_site(shipped_onnx, out, force=True)  # not a site: never replaced
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    build_site(shipped_onnx, out)
    (out / "stale.txt").write_text("from an earlier build")
    build_site(shipped_onnx, out, force=True)  # an earlier site is replaced
    assert not (out / "stale.txt").exists() and (out / "artifacts" / "manifest.json").is_file()


def test_site_carries_the_chosen_precisions_only(
    shipped_onnx: Path, node_modules: Path, tmp_path: Path
) -> None:
    def variant(precision: str, *files: str) -> dict[str, Any]:
        roles = ("encoder", "decoder", "decoder_grow")
        return {
            "backend": "onnxruntime",
            "precision": precision,
            "files": dict(zip(roles, files, strict=False)),
        }

    folder = {
        "variants": {
            "onnx-fp32": variant("fp32", "encoder.onnx", "decoder.onnx", "decoder.grow.onnx"),
            "onnx-int8": variant("int8", "encoder.int8.onnx", "decoder.int8.onnx"),
            "onnx-int4": variant("int4", "encoder.int4.onnx", "decoder.int4.onnx"),
        },
        "files": {name: {} for name in (
            "encoder.onnx", "decoder.onnx", "decoder.grow.onnx", "encoder.int8.onnx",
            "decoder.int8.onnx", "encoder.int4.onnx", "decoder.int4.onnx", "vocab.json",
        )},
    }  # fmt: skip
    default = site_manifest(folder, None)  # int4 only when asked for
    assert sorted(default["variants"]) == ["onnx-fp32", "onnx-int8"]
    assert sorted(default["files"]) == [
        "decoder.grow.onnx", "decoder.int8.onnx", "decoder.onnx", "encoder.int8.onnx",
        "encoder.onnx", "vocab.json",
    ]  # fmt: skip
    only_int4 = site_manifest(folder, ["int4"])
    assert sorted(only_int4["files"]) == ["decoder.int4.onnx", "encoder.int4.onnx", "vocab.json"]
    with pytest.raises(
        WebBuildError, match=r"--precisions \['int2'\]: .* \['fp32', 'int8', 'int4'\]"
    ):
        site_manifest(folder, ["int2"])

    site = build_site(shipped_onnx, tmp_path / "site", precisions=["int8"])
    manifest = load_manifest(site / "artifacts")  # every listed file present, hashes intact
    assert [v.precision for v in manifest.variants.values()] == ["int8"]
    assert not (site / "artifacts" / "encoder.onnx").exists()
    assert (site / "artifacts" / "encoder.int8.onnx").is_file()
    with pytest.raises(WebBuildError, match="--precisions"):
        build_site(shipped_onnx, tmp_path / "site4", precisions=["int4"])
    assert not (tmp_path / "site4").exists()


def test_server_mime_types(served: str) -> None:
    for path, mime in (("vendor/ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                       ("vendor/ort/ort.wasm.min.mjs", "text/javascript"),
                       ("lib/search.js", "text/javascript"),
                       ("artifacts/manifest.json", "application/json")):  # fmt: skip
        with urllib.request.urlopen(served + path) as response:
            assert response.headers["Content-Type"].split(";")[0] == mime, path


def _python_reference(artifacts: Path, precision: str, beams: int) -> dict[str, str]:
    """What the Python runtime gives for every test text, one text (and so sentence) per batch."""
    translator = Translator.from_artifacts(artifacts, precision=precision, threads=1)
    out = {}
    for (src, tgt), sentences in SENTENCES.items():
        texts = [*sentences, *([PARAGRAPH, LONG] if (src, tgt) == ("en", "de") else [])]
        outputs = translator.translate(texts, src, tgt, num_beams=beams, batch_size=1)
        out.update({f"{src}-{tgt}:{s}": t for s, t in zip(texts, outputs, strict=True)})
    return out


def _drive(spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing; run {SETUP}", pytrace=False)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"chromium": str(CHROMIUM), **spec}), encoding="utf-8")
    run = subprocess.run([_tool("node"), str(WEB / "tools" / "drive.mjs"), str(path)],
                         capture_output=True, text=True, timeout=900)  # fmt: skip
    assert run.returncode == 0, f"drive.mjs failed:\n{run.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def _variant_folder(site: Path, name: str, edit: Any) -> str:
    """A copy of the site's artifacts under ``site/name/``, changed by ``edit(folder)``."""
    folder = site / name
    if not folder.exists():
        shutil.copytree(site / "artifacts", folder)
        edit(folder)
    return f"{name}/"


def _manifest_edit(**changes: Any) -> Any:
    def edit(folder: Path) -> None:
        data = json.loads((folder / "manifest.json").read_text())
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        (folder / "manifest.json").write_text(json.dumps(data))

    return edit


def _flip_byte(name: str) -> Any:
    def edit(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 1
        (folder / name).write_bytes(bytes(data))

    return edit


def test_browser_translates_like_python(site: Path, served: str, tmp_path: Path) -> None:
    jobs = []
    for precision in ("fp32", "int8"):
        for beams in (1, 4):
            for (src, tgt), sentences in SENTENCES.items():
                texts = [*sentences, *([PARAGRAPH, LONG] if (src, tgt) == ("en", "de") else [])]
                jobs.append({"precision": precision, "beams": beams, "src": src, "tgt": tgt,
                             "texts": texts})  # fmt: skip
    pages = {
        "hash": _variant_folder(site, "bad_hash", _flip_byte("vocab.json")),
        "missing": _variant_folder(site, "missing_file", lambda f: (f / "vocab.json").unlink()),
        "old": _variant_folder(site, "old_manifest", _manifest_edit(directions=None)),
        "pairs": _variant_folder(site, "two_pairs", _manifest_edit(directions=["en-de", "de-en"])),
    }
    page_urls = {k: f"{served}index.html?artifacts={v}" for k, v in pages.items()}
    # The pickers offer trained pairs only; the page must still refuse one forced into them.
    unsupported = {"url": page_urls["pairs"], "force": {"src": "en", "tgt": "fr", "text": "A dog."}}
    screenshot = tmp_path / "web_demo.png"
    result = _drive({"url": f"{served}index.html", "mode": "ui", "jobs": jobs,
                     "pages": [*page_urls.values(), unsupported], "screenshot": str(screenshot)},
                    tmp_path)  # fmt: skip

    assert result["ready"] == "true", result.get("loadError")
    references = {(p, b): _python_reference(site / "artifacts", p, b)
                  for p in ("fp32", "int8") for b in (1, 4)}  # fmt: skip
    same: dict[tuple[str, int], list[bool]] = {key: [] for key in references}
    for job in result["jobs"]:
        expected = references[job["precision"], job["beams"]]
        for text, output, error in zip(job["texts"], job["outputs"], job["errors"], strict=True):
            key = f"{job['src']}-{job['tgt']}:{text}"
            assert error == "", (key, error)
            assert output.strip(), key
            if job["precision"] == "fp32":
                assert output == expected[key], (job["precision"], job["beams"], key)
            same[job["precision"], job["beams"]].append(output == expected[key])
        assert all("ms per token" in s and "words/s" in s for s in job["speeds"]), job["speeds"]
        # Every ONNX export has decoder.grow*.onnx: the page decodes with the growing cache.
        assert all(s.endswith("grow cache") for s in job["speeds"]), job["speeds"]
    # int8: ONNX Runtime's x86 and WebAssembly int8 kernels give different numbers for the same
    # graph (encoder outputs up to 0.23 apart on these sentences; fp32 agrees to 2e-6), so a
    # near-tie can go either way; nearly every sentence must still come out identical.
    for (precision, beams), flags in same.items():
        assert sum(flags) >= 0.8 * len(flags), f"{precision} beam {beams}: {flags}"

    hosts = {urlparse(url).hostname for url in result["requests"]}
    assert hosts == {"127.0.0.1"}, sorted(u for u in result["requests"] if "127.0.0.1" not in u)
    assert any(url.endswith(".wasm") for url in result["requests"])

    by_url = {page["url"]: page for page in result["pages"] if not page["forced"]}
    forced = [page for page in result["pages"] if page["forced"]]
    assert len(forced) == 1 and "unsupported pair en-fr" in forced[0]["error"], forced
    assert "en-de, de-en" in forced[0]["error"]
    bad_hash = by_url[page_urls["hash"]]
    assert bad_hash["ready"] == "error" and "hash mismatch for vocab.json" in bad_hash["error"]
    missing = by_url[page_urls["missing"]]
    assert missing["ready"] == "error" and "missing file vocab.json" in missing["error"]
    old = by_url[page_urls["old"]]
    assert old["ready"] == "true" and "does not list its trained directions" in old["notice"]
    assert sorted(old["sources"]) == ["de", "en", "fr"]
    pairs = by_url[page_urls["pairs"]]
    assert pairs["ready"] == "true" and pairs["notice"] == "" and pairs["sources"] == ["en", "de"]

    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not result["consoleErrors"] or all(
        any(name in line for name in pages.values()) for line in result["consoleErrors"]
    ), result["consoleErrors"]


@pytest.fixture(scope="module")
def marian_site(
    marian_checkpoint: Path, node_modules: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The small imported Marian en-de model (tests/marian_fixtures.py) exported to ONNX fp32 and
    built into a site by ``export.web``."""
    root = tmp_path_factory.mktemp("marian-web")
    onnx = export_onnx(ExportOptions(out=root / "onnx", checkpoint=marian_checkpoint), "none")
    return build_site(onnx, root / "site")


def test_browser_translates_an_imported_marian_model_like_python(
    marian_site: Path, tmp_path: Path
) -> None:
    """An imported OPUS-MT-style model (single pair en-de, no language codes, the JS
    MarianTokenizer, decoding from pad) in the page: the pickers offer en -> de only, and greedy
    and beam-4 fp32 translations are the Python runtime's exactly."""
    manifest = load_manifest(marian_site / "artifacts")
    assert manifest.directions == ["en-de"] and manifest.lang_ids == {}
    assert manifest.data["tokenizer"]["type"] == "marian-sentencepiece"
    jobs = [{"precision": "fp32", "beams": beams, "src": "en", "tgt": "de",
             "texts": [*MARIAN_SENTENCES, MARIAN_SENTENCES[0] + " " + MARIAN_SENTENCES[1]]}
            for beams in (1, 4)]  # fmt: skip
    server = make_server(marian_site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        result = _drive({"url": url, "mode": "ui", "jobs": jobs, "pages": [url]}, tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert result["ready"] == "true", result.get("loadError")
    (page,) = result["pages"]
    assert (page["sources"], page["targets"], page["notice"]) == (["en"], ["de"], "")
    translator = Translator.from_artifacts(marian_site / "artifacts", precision="fp32", threads=1)
    outputs = set()
    for job in result["jobs"]:
        want = translator.translate(job["texts"], "en", "de", num_beams=job["beams"], batch_size=1)
        assert job["errors"] == [""] * len(want), job["errors"]
        assert job["outputs"] == want, job["beams"]
        outputs.update(want)
    assert len(outputs) >= 4, outputs  # the outputs depend on the source and on the search
    assert {urlparse(u).hostname for u in result["requests"]} == {"127.0.0.1"}
    assert not result["consoleErrors"], result["consoleErrors"]


def test_the_shipped_export_refuses_an_untrained_direction(
    shipped_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """fr-de: both languages are in the vocabulary, the direction was never trained."""
    assert load_manifest(shipped_onnx).directions == ["en-de", "de-en", "en-fr", "fr-en"]
    args = ["--artifacts", str(shipped_onnx), "--src", "fr", "--tgt", "de", "Bonjour."]
    assert translate_main(args) == 2
    err = capsys.readouterr().err
    assert "direction fr-de was not trained" in err and "en-de, de-en, en-fr, fr-en" in err
    assert translate_main([*args[:4], "--tgt", "en", "Bonjour."]) == 0
