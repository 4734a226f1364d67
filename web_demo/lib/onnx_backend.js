// ONNX Runtime Web backend for lib/search.js: the encoder and a decoder of an export, fed as
// runtime/onnx_backend.py feeds them, on the WebAssembly CPU provider. Two decoders, two rules
// (lingolite/model.py states both; runtime/onnx_backend.py mirrors them):
// - static (decoder.onnx): tokens (b, 1), pos (1,), src_mask, cross K/V and the self cache
//   (L, b, h_kv, max_tgt_len, d) the previous step returned, zeros at the start; the step writes
//   slot pos and returns the whole cache.
// - growing (decoder.grow.onnx, used when the variant has it): no pos; one tensor per decoder
//   layer i (cross_k_i, cross_v_i, past_k_i, past_v_i -> present_k_i, present_v_i, each
//   (b, h_kv, length, d)); past holds exactly the pos positions fed before (length 0 at the start)
//   and present one more, so a step reads and writes what the sentence has, not max_tgt_len
//   slots. As in runtime/onnx_backend.py the cache is 2L one-layer stacks (1, b, h_kv, t, d), K of
//   every layer then V, and each per-layer input is a view (subarray) of a stacked tensor.
import * as ort from "onnxruntime-web";
import { growDecoderNames } from "./artifact.js";

export { ort };

const ENCODER_OUTPUTS = ["cross_k", "cross_v"];
const DECODER_OUTPUTS = ["logits", "new_self_k", "new_self_v"];
/** Layer i of a stacked (L, ...) tensor: a view of its data, dims without the first. */
function layerOf(tensor, i) {
  const inner = tensor.dims.slice(1);
  const size = inner.reduce((a, b) => a * b, 1);
  return new ort.Tensor(tensor.type, tensor.data.subarray(i * size, (i + 1) * size), inner);
}

/** The session options of runtime/onnx_backend.session_options, for the wasm provider. */
export const SESSION_OPTIONS = {
  executionProviders: ["wasm"],
  graphOptimizationLevel: "all",
  logSeverityLevel: 3,
  extra: { session: { disable_quant_qdq: "1" } },
};

/** Rows `rows` of `tensor` along `axis` (the batch axis), as numpy.take does. */
export function takeRows(tensor, rows, axis) {
  const dims = tensor.dims;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const batch = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const src = tensor.data;
  const out = new src.constructor(outer * rows.length * inner);
  for (let o = 0; o < outer; o++) {
    rows.forEach((r, j) => {
      const from = (o * batch + r) * inner;
      out.set(src.subarray(from, from + inner), (o * rows.length + j) * inner);
    });
  }
  const newDims = [...dims];
  newDims[axis] = rows.length;
  return new ort.Tensor(tensor.type, out, newDims);
}

/** The inputs both decoders take: this step's tokens (rows, 1) and the source mask. */
function stepFeeds(tokens, memory) {
  return {
    tokens: new ort.Tensor("int64", BigInt64Array.from(tokens, BigInt), [tokens.length, 1]),
    src_mask: memory.srcMask,
  };
}

export class OnnxBackend {
  /** `cache` is "grow" for a growing-cache decoder (decoder.grow*.onnx), else "static". */
  constructor(encoder, decoder, model, cache = "static") {
    if (cache !== "static" && cache !== "grow") throw new Error(`cache must be "static" or "grow", not ${JSON.stringify(cache)}`);
    this.encoder = encoder;
    this.decoder = decoder;
    this.model = model;
    this.cache = cache;
    this.maxTgtLen = model.max_tgt_len;
    this.maxSrcLen = model.max_src_len;
    const grow = cache === "grow";
    this.growNames = growDecoderNames(model.n_decoder_layers);
    const missing = [
      ...["src_ids", "src_mask"].filter((n) => !encoder.inputNames.includes(n)).map((n) => `encoder input ${n}`),
      ...ENCODER_OUTPUTS.filter((n) => !encoder.outputNames.includes(n)).map((n) => `encoder output ${n}`),
      ...(grow ? this.growNames.inputs : []).filter((n) => !decoder.inputNames.includes(n)).map((n) => `decoder input ${n}`),
      ...(grow ? this.growNames.outputs : DECODER_OUTPUTS).filter((n) => !decoder.outputNames.includes(n)).map((n) => `decoder output ${n}`),
    ];
    if (missing.length) throw new Error(`the graphs lack ${missing.join(", ")}`);
  }

  /** Sessions from the graph bytes (already checked against the manifest). */
  static async create(encoderBytes, decoderBytes, model, cache = "static") {
    const encoder = await ort.InferenceSession.create(encoderBytes, SESSION_OPTIONS);
    const decoder = await ort.InferenceSession.create(decoderBytes, SESSION_OPTIONS);
    return new OnnxBackend(encoder, decoder, model, cache);
  }

  async encode(srcIds) {
    if (srcIds.length > this.maxSrcLen) {
      throw new Error(`source length ${srcIds.length} exceeds the model's max_src_len (${this.maxSrcLen})`);
    }
    const n = srcIds.length;
    const ids = new ort.Tensor("int64", BigInt64Array.from(srcIds, BigInt), [1, n]);
    const mask = new ort.Tensor("bool", new Uint8Array(n).fill(1), [1, n]);
    const out = await this.encoder.run({ src_ids: ids, src_mask: mask }, ENCODER_OUTPUTS);
    return { srcMask: mask, crossK: out.cross_k, crossV: out.cross_v };
  }

  takeMemory(memory, rows) {
    return {
      srcMask: takeRows(memory.srcMask, rows, 0),
      crossK: takeRows(memory.crossK, rows, 1),
      crossV: takeRows(memory.crossV, rows, 1),
    };
  }

  /** The start state: zeros (n_decoder_layers, rows, n_kv_heads, max_tgt_len, head_dim), as
   * search.zero_cache; for the growing cache 2L empty one-layer stacks (1, rows, n_kv_heads, 0,
   * head_dim), as runtime/onnx_backend.py. */
  initCache(rows) {
    const m = this.model;
    const headDim = Math.floor(m.d_model / m.n_heads);
    if (this.cache === "grow") {
      return Array.from({ length: 2 * m.n_decoder_layers }, () => new ort.Tensor("float32", new Float32Array(0), [1, rows, m.n_kv_heads, 0, headDim]));
    }
    const dims = [m.n_decoder_layers, rows, m.n_kv_heads, m.max_tgt_len, headDim];
    const size = dims.reduce((a, b) => a * b, 1);
    return [new ort.Tensor("float32", new Float32Array(size), dims), new ort.Tensor("float32", new Float32Array(size), dims)];
  }

  takeCache(cache, rows) {
    return cache.map((t) => takeRows(t, rows, 1));
  }

  async decodeStep(tokens, pos, memory, cache) {
    if (this.cache === "grow") return this.growStep(tokens, pos, memory, cache);
    const feeds = {
      ...stepFeeds(tokens, memory),
      cross_k: memory.crossK,
      cross_v: memory.crossV,
      pos: new ort.Tensor("int64", BigInt64Array.from([BigInt(pos)]), [1]),
      self_k: cache[0],
      self_v: cache[1],
    };
    const out = await this.decoder.run(feeds, DECODER_OUTPUTS);
    return { logits: out.logits.data, vocab: out.logits.dims[1], cache: [out.new_self_k, out.new_self_v] };
  }

  /** The growing-cache rule: the cache holds exactly the pos positions fed before. */
  async growStep(tokens, pos, memory, cache) {
    const layers = this.model.n_decoder_layers;
    if (cache.length !== 2 * layers) {
      throw new Error(`the growing cache holds ${cache.length} tensors, expected ${2 * layers} (K then V of every decoder layer); feed the cache initCache returned`);
    }
    const length = cache[0].dims[3];
    if (length !== pos) {
      throw new Error(`the growing cache holds ${length} positions but the step is at pos ${pos}; feed the cache returned by the previous step`);
    }
    const { inputs, outputs } = this.growNames;
    const values = [
      ...Array.from({ length: layers }, (_, i) => layerOf(memory.crossK, i)),
      ...Array.from({ length: layers }, (_, i) => layerOf(memory.crossV, i)),
      ...cache.map((t) => layerOf(t, 0)),
    ];
    const feeds = stepFeeds(tokens, memory);
    values.forEach((value, i) => { feeds[inputs[2 + i]] = value; });
    const out = await this.decoder.run(feeds, outputs);
    const present = outputs.slice(1).map((name) => new ort.Tensor("float32", out[name].data, [1, ...out[name].dims]));
    return { logits: out.logits.data, vocab: out.logits.dims[1], cache: present };
  }

  async release() {
    await this.encoder.release();
    await this.decoder.release();
  }
}
