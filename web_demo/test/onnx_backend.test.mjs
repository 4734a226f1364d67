// lib/onnx_backend.js over fake sessions: which rule each decoder follows (the feeds it gets, the
// cache it starts from and hands back) and the refusals. The browser test (tests/test_web.py)
// runs the real graphs against the Python runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OnnxBackend, ort } from "../lib/onnx_backend.js";

const MODEL = { n_decoder_layers: 2, n_kv_heads: 1, d_model: 4, n_heads: 2, max_tgt_len: 6, max_src_len: 8 };
const ENCODER = { inputNames: ["src_ids", "src_mask"], outputNames: ["cross_k", "cross_v"] };

/** A growing-cache decoder: present = past plus one position whose every value is pos + 1. */
function growDecoder(seen) {
  return {
    inputNames: ["tokens", "src_mask", "cross_k", "cross_v", "past_k", "past_v"],
    outputNames: ["logits", "present_k", "present_v"],
    async run(feeds, outputs) {
      seen.push({ names: Object.keys(feeds).sort(), past: feeds.past_k.dims, outputs });
      const [L, b, h, t, d] = feeds.past_k.dims;
      const present = new Float32Array(L * b * h * (t + 1) * d);
      for (let i = 0; i < present.length; i++) {
        const slot = Math.floor(i / d) % (t + 1);
        present[i] = slot < t ? feeds.past_k.data[Math.floor(i / ((t + 1) * d)) * t * d + slot * d + (i % d)] : t + 1;
      }
      const tensor = new ort.Tensor("float32", present, [L, b, h, t + 1, d]);
      return { logits: new ort.Tensor("float32", new Float32Array(b * 3), [b, 3]), present_k: tensor, present_v: tensor };
    },
  };
}

const memory = { srcMask: null, crossK: null, crossV: null };

test("growing cache: starts empty, grows one position a step, reorders rows", async () => {
  const seen = [];
  const backend = new OnnxBackend(ENCODER, growDecoder(seen), MODEL, "grow");
  let cache = backend.initCache(2);
  assert.deepEqual(cache[0].dims, [2, 2, 1, 0, 2]);
  for (let pos = 0; pos < 3; pos++) {
    const step = await backend.decodeStep([1, 2], pos, memory, cache);
    assert.equal(step.vocab, 3);
    cache = backend.takeCache(step.cache, [1, 1]);
  }
  assert.deepEqual(seen[0].names, ["cross_k", "cross_v", "past_k", "past_v", "src_mask", "tokens"]);
  assert.deepEqual(seen.map((s) => s.past[3]), [0, 1, 2]);
  assert.deepEqual(seen[0].outputs, ["logits", "present_k", "present_v"]);
  assert.deepEqual(cache[0].dims, [2, 2, 1, 3, 2]);
  assert.deepEqual([...cache[0].data.slice(0, 6)], [1, 1, 2, 2, 3, 3]);
  await assert.rejects(backend.decodeStep([1, 2], 5, memory, cache), /growing cache holds 3 positions but the step is at pos 5/);
});

test("static cache: pos is fed, the whole cache goes in and comes back", async () => {
  const seen = [];
  const decoder = {
    inputNames: [],
    outputNames: ["logits", "new_self_k", "new_self_v"],
    async run(feeds, outputs) {
      seen.push({ names: Object.keys(feeds).sort(), pos: Number(feeds.pos.data[0]), tokens: feeds.tokens.dims, outputs });
      return { logits: new ort.Tensor("float32", new Float32Array(6), [2, 3]), new_self_k: feeds.self_k, new_self_v: feeds.self_v };
    },
  };
  const backend = new OnnxBackend(ENCODER, decoder, MODEL);
  const cache = backend.initCache(2);
  const step = await backend.decodeStep([4, 5], 3, memory, cache);
  assert.deepEqual(seen[0], {
    names: ["cross_k", "cross_v", "pos", "self_k", "self_v", "src_mask", "tokens"],
    pos: 3,
    tokens: [2, 1],
    outputs: ["logits", "new_self_k", "new_self_v"],
  });
  assert.equal(step.cache[0], cache[0]);
});

test("static cache starts at max_tgt_len slots; a decoder missing a rule's names is refused", () => {
  const staticDecoder = { inputNames: [], outputNames: ["logits", "new_self_k", "new_self_v"] };
  assert.deepEqual(new OnnxBackend(ENCODER, staticDecoder, MODEL).initCache(3)[0].dims, [2, 3, 1, 6, 2]);
  assert.throws(() => new OnnxBackend(ENCODER, staticDecoder, MODEL, "grow"), /decoder input past_k.*decoder output present_k/);
  assert.throws(() => new OnnxBackend(ENCODER, growDecoder([]), MODEL), /decoder output new_self_k/);
  assert.throws(() => new OnnxBackend(ENCODER, staticDecoder, MODEL, "dynamic"), /cache must be "static" or "grow", not "dynamic"/);
});
