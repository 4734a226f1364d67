// lib/onnx_backend.js over fake sessions: which rule each decoder follows (the feeds it gets, the
// cache it starts from and hands back) and the refusals. The browser test (tests/test_web.py)
// runs the real graphs against the Python runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { growDecoderNames } from "../lib/artifact.js";
import { OnnxBackend, ort } from "../lib/onnx_backend.js";

const MODEL = { n_decoder_layers: 2, n_kv_heads: 1, d_model: 4, n_heads: 2, max_tgt_len: 6, max_src_len: 8 };
const ENCODER = { inputNames: ["src_ids", "src_mask"], outputNames: ["cross_k", "cross_v"] };

/** A growing-cache decoder of MODEL's two layers: present_{k,v}_i = past_{k,v}_i plus one position
 * whose every value is 10 * i + pos + 1 (V: negated), so each output shows where it came from. */
function growDecoder(seen) {
  const names = growDecoderNames(MODEL.n_decoder_layers);
  return {
    inputNames: names.inputs,
    outputNames: names.outputs,
    async run(feeds, outputs) {
      seen.push({ names: Object.keys(feeds), past: feeds.past_k_0.dims, cross: feeds.cross_k_1.data, outputs });
      const out = { logits: new ort.Tensor("float32", new Float32Array(feeds.tokens.dims[0] * 3), [feeds.tokens.dims[0], 3]) };
      for (const [kind, sign] of [["k", 1], ["v", -1]]) {
        for (let layer = 0; layer < MODEL.n_decoder_layers; layer++) {
          const past = feeds[`past_${kind}_${layer}`];
          const [b, h, t, d] = past.dims;
          const present = new Float32Array(b * h * (t + 1) * d);
          for (let i = 0; i < present.length; i++) {
            const slot = Math.floor(i / d) % (t + 1);
            present[i] = slot < t ? past.data[Math.floor(i / ((t + 1) * d)) * t * d + slot * d + (i % d)] : sign * (10 * layer + t + 1);
          }
          out[`present_${kind}_${layer}`] = new ort.Tensor("float32", present, [b, h, t + 1, d]);
        }
      }
      return out;
    },
  };
}

const memory = { srcMask: null, crossK: null, crossV: null };

test("growing cache: one tensor per layer, starts empty, grows one position a step, reorders rows", async () => {
  const seen = [];
  const backend = new OnnxBackend(ENCODER, growDecoder(seen), MODEL, "grow");
  let cache = backend.initCache(2);
  assert.equal(cache.length, 4); // K of both layers, then V
  assert.deepEqual(cache[0].dims, [1, 2, 1, 0, 2]);
  // Stacked cross K/V (L=2, b=2, h=1, s=1, d=2): layer 1 reaches the graph as a view of its half.
  const stacked = new ort.Tensor("float32", Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]), [2, 2, 1, 1, 2]);
  const mem = { srcMask: null, crossK: stacked, crossV: stacked };
  for (let pos = 0; pos < 3; pos++) {
    const step = await backend.decodeStep([1, 2], pos, mem, cache);
    assert.equal(step.vocab, 3);
    cache = backend.takeCache(step.cache, [1, 1]);
  }
  assert.deepEqual(seen[0].names, growDecoderNames(2).inputs);
  assert.deepEqual([...seen[0].cross], [4, 5, 6, 7]);
  assert.equal(seen[0].cross.buffer, stacked.data.buffer); // a view, not a copy
  assert.deepEqual(seen.map((s) => s.past[2]), [0, 1, 2]);
  assert.deepEqual(seen[0].outputs, growDecoderNames(2).outputs);
  assert.deepEqual(cache.map((t) => t.dims), Array(4).fill([1, 2, 1, 3, 2]));
  assert.deepEqual([...cache[0].data.slice(0, 6)], [1, 1, 2, 2, 3, 3]);
  assert.deepEqual([...cache[1].data.slice(0, 6)], [11, 11, 12, 12, 13, 13]);
  assert.deepEqual([...cache[3].data.slice(0, 6)], [-11, -11, -12, -12, -13, -13]);
  await assert.rejects(backend.decodeStep([1, 2], 5, mem, cache), /growing cache holds 3 positions but the step is at pos 5/);
  await assert.rejects(backend.decodeStep([1, 2], 3, mem, cache.slice(0, 2)), /holds 2 tensors, expected 4/);
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
  assert.throws(() => new OnnxBackend(ENCODER, staticDecoder, MODEL, "grow"), /decoder input cross_k_0.*decoder output present_k_0/);
  assert.throws(() => new OnnxBackend(ENCODER, growDecoder([]), MODEL), /decoder output new_self_k/);
  assert.throws(() => new OnnxBackend(ENCODER, staticDecoder, MODEL, "dynamic"), /cache must be "static" or "grow", not "dynamic"/);
});
