// The JS search replaying the logits Python's lingolite.search.generate saw, keyed on the prefix
// fed so far: the golden runs scripts/make_android_goldens.py records for the Java core (table
// backends with exact ties, hand-made ties, a tiny seeded LingoLite). The same tokens must come
// out, every prefix JS feeds must be one Python fed (else the search or the cache rule diverged),
// and, as JS batches beams like Python, the number of decode steps must be Python's too.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generate, logSoftmax, pairwiseSum, searchConfig, topStable } from "../lib/search.js";
import { envFile, readJson } from "./helpers.mjs";

const goldenFile = envFile("LINGOLITE_SEARCH_GOLDEN"); // search_golden.json

/** Serves recorded logits by prefix; its cache is the prefix of every row. */
class ReplayBackend {
  constructor(c) {
    this.maxTgtLen = c.max_tgt_len;
    this.vocab = c.vocab_size;
    this.table = new Map(c.table.map(([prefix, logits]) => [prefix.join(","), Float32Array.from(logits)]));
  }
  async encode(srcIds) {
    return { rows: 1, srcIds };
  }
  takeMemory(memory, rows) {
    return { ...memory, rows: rows.length };
  }
  initCache(rows) {
    return Array.from({ length: rows }, () => []);
  }
  takeCache(cache, rows) {
    return rows.map((r) => cache[r]);
  }
  async decodeStep(tokens, pos, memory, cache) {
    assert.equal(tokens.length, memory.rows, "tokens and memory rows differ");
    const logits = new Float32Array(tokens.length * this.vocab);
    const next = cache.map((prefix, row) => {
      assert.equal(prefix.length, pos, `cache rule: step at pos ${pos} got a cache of ${prefix.length} tokens`);
      const fed = [...prefix, tokens[row]];
      const recorded = this.table.get(fed.join(","));
      assert.ok(recorded, `JS fed prefix [${fed}] which Python never fed`);
      logits.set(recorded, row * this.vocab);
      return fed;
    });
    return { logits, vocab: this.vocab, cache: next };
  }
}

test("JS search reproduces the recorded Python runs", { skip: goldenFile.why || false }, async () => {
  const cases = readJson(goldenFile.file).cases;
  assert.ok(cases.length >= 15, `expected at least 15 search cases, got ${cases.length}`);
  let beams = 0;
  for (const c of cases) {
    const backend = new ReplayBackend(c);
    const config = searchConfig(c.max_tgt_len, {
      maxLength: c.config.max_length,
      numBeams: c.config.num_beams,
      lengthPenalty: c.config.length_penalty,
      earlyStopping: c.config.early_stopping,
    });
    const out = await generate(backend, c.src_ids, { bosId: c.bos_id, eosId: c.eos_id, config });
    assert.deepEqual(out.tokens, c.expected, c.name);
    assert.equal(out.steps, c.python_decode_step_calls, `${c.name}: decode steps`);
    if (c.config.num_beams > 1) beams++;
  }
  assert.ok(beams >= 10, `only ${beams} beam cases`);
});

test("helpers mirror numpy", () => {
  // argsort(-x, kind="stable"): ties to the lower index, NaN last.
  assert.deepEqual(topStable([1, 3, 3, NaN, 2, 3], 4), [1, 2, 5, 4]);
  assert.deepEqual(topStable([0, 0, 0], 5), [0, 1, 2]);
  // pairwise summation differs from a left-to-right sum on these values; numpy gives 1.0000000000000102.
  const a = Float64Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 1e-16 : 1 / 200));
  assert.equal(pairwiseSum(a, 0, a.length), 1.0000000000000102);
  const lp = logSoftmax(Float32Array.from([1, 2, 3]));
  assert.ok(Math.abs(lp[2] - -0.40760596444438) < 1e-12);
  assert.throws(() => searchConfig(8, { maxLength: 9 }), /max_length must be in \[1, 8\], got 9/);
  assert.throws(() => searchConfig(8, { numBeams: 0 }), /num_beams must be >= 1, got 0/);
});
