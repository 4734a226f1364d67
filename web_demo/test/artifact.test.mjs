// lib/artifact.js with an in-memory "server": manifest checks, file names kept inside the folder,
// size and sha256 verification (WebCrypto), and the trained directions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Artifact, ArtifactError } from "../lib/artifact.js";

const BASE = "http://127.0.0.1:1/artifacts/";

function site(files) {
  return async (url) => {
    const body = files[String(url)];
    if (body === undefined) return new Response("not found", { status: 404 });
    return new Response(body);
  };
}

function manifestFor(files, extra = {}) {
  const entries = Object.fromEntries(
    Object.entries(files).map(([name, data]) => [name, { bytes: data.length, sha256: createHash("sha256").update(data).digest("hex") }]),
  );
  return {
    format_version: 1,
    model: { max_tgt_len: 8, n_decoder_layers: 1 },
    tokenizer: { languages: ["de", "en", "fr"], vocab: "vocab.json" },
    variants: {
      "onnx-fp32": { backend: "onnxruntime", precision: "fp32", files: { encoder: "encoder.onnx", decoder: "decoder.onnx" } },
    },
    files: entries,
    ...extra,
  };
}

async function open(files, extra = {}, served = files) {
  const urls = Object.fromEntries(Object.entries(served).map(([n, d]) => [BASE + n, d]));
  urls[`${BASE}manifest.json`] = JSON.stringify(manifestFor(files, extra));
  return Artifact.open(BASE, site(urls));
}

const FILES = { "vocab.json": Buffer.from('{"a": 1}'), "encoder.onnx": Buffer.from("enc"), "decoder.onnx": Buffer.from("dec") };

test("verified bytes, and every bad file named", async () => {
  const a = await open(FILES);
  assert.deepEqual(await a.json("vocab.json"), { a: 1 });
  assert.deepEqual(a.onnxVariants(), { fp32: { encoder: "encoder.onnx", decoder: "decoder.onnx", cache: "static" } });
  const perLayer = ["tokens", "src_mask", "cross_k_0", "cross_v_0", "past_k_0", "past_v_0"];
  const growVariant = (inputs) => ({
    "onnx-int8": {
      backend: "onnxruntime", precision: "int8",
      files: { encoder: "e.onnx", decoder: "d.onnx", decoder_grow: "d.grow.onnx" },
      signatures: { decoder_grow: { inputs: inputs.map((name) => ({ name })), outputs: [] } },
    },
  });
  const growVariants = growVariant(perLayer);
  const grow = await open(FILES, { variants: growVariants });
  assert.deepEqual(grow.onnxVariants(), { int8: { encoder: "e.onnx", decoder: "d.grow.onnx", cache: "grow" } });
  // A growing decoder with the earlier stacked inputs (cross_k, past_k, ...): the static one runs.
  const stacked = await open(FILES, { variants: growVariant(["tokens", "src_mask", "cross_k", "cross_v", "past_k", "past_v"]) });
  assert.deepEqual(stacked.onnxVariants(), { int8: { encoder: "e.onnx", decoder: "d.onnx", cache: "static" } });
  const escaping = { "onnx-int8": { ...growVariants["onnx-int8"], files: { encoder: "e.onnx", decoder: "d.onnx", decoder_grow: "../d.onnx" } } };
  await assert.rejects(async () => (await open(FILES, { variants: escaping })).onnxVariants(), /decoder_grow/);
  const tampered = await open(FILES, {}, { ...FILES, "encoder.onnx": Buffer.from("ENC") });
  await assert.rejects(tampered.bytes("encoder.onnx"), /hash mismatch for encoder.onnx: sha256 [0-9a-f]{64}, the manifest says/);
  const truncated = await open(FILES, {}, { ...FILES, "decoder.onnx": Buffer.from("de") });
  await assert.rejects(truncated.bytes("decoder.onnx"), /decoder.onnx has 2 bytes, the manifest says 3/);
  const missing = await open(FILES, {}, { "vocab.json": FILES["vocab.json"] });
  await assert.rejects(missing.bytes("encoder.onnx"), /missing file encoder.onnx \(HTTP 404/);
  await assert.rejects(a.bytes("other.onnx"), /other.onnx is not listed/);
  for (const bad of ["../x.onnx", "/etc/passwd", "http://evil.example/x", "a//b", "./a"]) {
    await assert.rejects(a.bytes(bad), (e) => e instanceof ArtifactError && e.message.includes(JSON.stringify(bad)));
  }
  await assert.rejects(Artifact.open(BASE, site({})), /missing file .*manifest.json \(HTTP 404\)/);
  const v2 = { [`${BASE}manifest.json`]: JSON.stringify({ ...manifestFor(FILES), format_version: 2 }) };
  await assert.rejects(Artifact.open(BASE, site(v2)), /format_version 2 is not supported/);
});

test("directions from the manifest, or every pair with a flag", async () => {
  const listed = await open(FILES, { directions: ["en-de", "de-en"] });
  assert.deepEqual(listed.directions(), { directions: ["en-de", "de-en"], fromManifest: true });
  const old = await open(FILES);
  const { directions, fromManifest } = old.directions();
  assert.equal(fromManifest, false);
  assert.deepEqual(directions.sort(), ["de-en", "de-fr", "en-de", "en-fr", "fr-de", "fr-en"]);
  const bad = await open(FILES, { directions: ["en-xx", "en-de"] });
  assert.throws(() => bad.directions(), /\["en-xx"\] are not pairs of the tokenizer's languages/);
  const noOnnx = await open(FILES, { variants: {} });
  assert.throws(() => noOnnx.onnxVariants(), /no onnxruntime variant/);
});
