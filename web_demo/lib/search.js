// Greedy and beam search for one sentence: a port of lingolite/search.py (and of the Android
// core's Search.java), so that the same logits give the same tokens.
//
// The cache rule, as in search.py: encode once; initCache(rows) is the start state; step `pos`
// feeds one token per row at position pos (BOS at 0) with the cache the previous step returned
// and gets the logits for pos + 1 and the new cache; beam search reorders cache rows by the row
// each surviving hypothesis came from (takeCache), so a row's cache always describes exactly the
// prefix of the hypothesis in that row. Beam search runs its k rows as one batch, as Python does.
//
// What must match exactly: log-softmax in double (x - max, log of numpy's pairwise sum of exp);
// greedy takes the first maximal logit (numpy.argmax); beam candidates are ranked like
// numpy.argsort(-scores, kind="stable") over the k * V flat scores, keeping the best 2k; beams
// 1..k-1 start at -1e9; EOS candidates go to the finished list with score / length^alpha (length
// counts the EOS); the finished list keeps the best k, stable on ties; a sentence is done when k
// hypotheses are finished and (early stopping or) the best running beam, normalised at the current
// length, cannot beat the worst kept one; beams still running at max_length compete at their own
// length.
//
// A backend implements: maxTgtLen; async encode(srcIds) -> memory (one row);
// takeMemory(memory, rows); initCache(rows); takeCache(cache, rows);
// async decodeStep(tokens, pos, memory, cache) -> {logits: Float32Array(rows * vocab), vocab, cache}.

export class SearchError extends Error {}

/** Decoding options, validated like lingolite.search.SearchConfig. */
export function searchConfig(maxTgtLen, { maxLength = null, numBeams = 1, lengthPenalty = 1.0, earlyStopping = false } = {}) {
  const errors = [];
  if (maxLength !== null && !(Number.isInteger(maxLength) && maxLength >= 1 && maxLength <= maxTgtLen)) {
    errors.push(`max_length must be in [1, ${maxTgtLen}], got ${maxLength}`);
  }
  if (!(Number.isInteger(numBeams) && numBeams >= 1)) errors.push(`num_beams must be >= 1, got ${numBeams}`);
  if (!Number.isFinite(lengthPenalty)) errors.push(`length_penalty must be finite, got ${lengthPenalty}`);
  if (errors.length) throw new SearchError(`invalid search config: ${errors.join("; ")}`);
  return { maxLength: maxLength ?? maxTgtLen, numBeams, lengthPenalty, earlyStopping };
}

/** numpy.argmax over one row: the first maximum; a NaN counts as the maximum. */
export function argmax(logits, from = 0, n = logits.length) {
  let best = 0;
  for (let i = 0; i < n; i++) {
    const v = logits[from + i];
    if (Number.isNaN(v)) return i;
    if (v > logits[from + best]) best = i;
  }
  return best;
}

/** numpy's pairwise_sum for float64 (blocks of 128, 8 accumulators). */
export function pairwiseSum(a, from, n) {
  if (n < 8) {
    let res = 0.0;
    for (let i = 0; i < n; i++) res += a[from + i];
    return res;
  }
  if (n <= 128) {
    const r = new Float64Array(8);
    for (let j = 0; j < 8; j++) r[j] = a[from + j];
    let i;
    for (i = 8; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += a[from + i + j];
    let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
    for (; i < n; i++) res += a[from + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, from, n2) + pairwiseSum(a, from + n2, n - n2);
}

/** log-softmax of logits[from, from + n) in double, with numpy's summation order. */
export function logSoftmax(logits, from = 0, n = logits.length) {
  const x = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    x[i] = logits[from + i];
    if (Number.isNaN(x[i])) max = NaN; // numpy's max propagates NaN
    else if (x[i] > max) max = x[i];
  }
  const e = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[i] -= max;
    e[i] = Math.exp(x[i]);
  }
  const lse = Math.log(pairwiseSum(e, 0, n));
  for (let i = 0; i < n; i++) x[i] -= lse;
  return x;
}

/** Strictly ahead in numpy's order of -score: larger first, NaN last. */
function better(a, b) {
  if (Number.isNaN(a)) return false;
  return Number.isNaN(b) || a > b;
}

/** The n best flat indices, ordered as numpy.argsort(-scores, kind="stable")[:n]. */
export function topStable(scores, n) {
  n = Math.min(n, scores.length);
  const best = new Int32Array(n);
  let size = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (size === n && !better(s, scores[best[size - 1]])) continue; // later indices lose ties
    let at = size === n ? n - 1 : size;
    while (at > 0 && better(s, scores[best[at - 1]])) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = i;
    if (size < n) size++;
  }
  return Array.from(best);
}

/** score / length^alpha; length counts EOS, so it is never 0. */
export function lengthNormalised(score, length, alpha) {
  return score / length ** alpha;
}

/** Finished hypotheses of the sentence: at most k, best first, stable on equal scores. */
class Hypotheses {
  constructor(numBeams) {
    this.numBeams = numBeams;
    this.items = []; // [score, tokens]
  }

  add(score, tokens) {
    let at = 0;
    while (at < this.items.length && !(this.items[at][0] < score)) at++;
    this.items.splice(at, 0, [score, tokens]);
    this.items.length = Math.min(this.items.length, this.numBeams);
  }

  isDone(bestRunning, length, config) {
    if (this.items.length < this.numBeams) return false;
    if (config.earlyStopping) return true;
    const bound = lengthNormalised(bestRunning, length, config.lengthPenalty);
    return this.items[this.items.length - 1][0] >= bound;
  }
}

/**
 * Translate one source (ids with tag and EOS) into target ids without BOS and EOS.
 * Returns {tokens, steps, encodeMs, decodeMs}; `now` is the clock (performance.now in a page).
 */
export async function generate(backend, srcIds, { bosId, eosId, config, now = () => performance.now() }) {
  if (!srcIds.length) throw new SearchError("every source sequence needs at least one token");
  const t0 = now();
  const memory = await backend.encode(srcIds);
  const t1 = now();
  const run = config.numBeams > 1 ? beamSearch : greedy;
  const { tokens, steps } = await run(backend, memory, bosId, eosId, config);
  return { tokens, steps, encodeMs: t1 - t0, decodeMs: now() - t1 };
}

async function greedy(backend, memory, bosId, eosId, config) {
  let cache = backend.initCache(1);
  let token = bosId;
  const out = [];
  let steps = 0;
  for (let pos = 0; pos < config.maxLength; pos++) {
    const step = await backend.decodeStep([token], pos, memory, cache);
    steps++;
    cache = step.cache;
    const next = argmax(step.logits, 0, step.vocab);
    if (next === eosId) break;
    out.push(next);
    token = next;
  }
  return { tokens: out, steps };
}

async function beamSearch(backend, memory0, bosId, eosId, config) {
  const k = config.numBeams;
  const memory = backend.takeMemory(memory0, new Array(k).fill(0));
  let cache = backend.initCache(k);
  let tokens = new Array(k).fill(bosId);
  // Only the first beam is live at the start: the others are copies of it.
  let beamScores = Float64Array.from({ length: k }, (_, j) => (j === 0 ? 0.0 : -1e9));
  let prefixes = Array.from({ length: k }, () => []);
  const finished = new Hypotheses(k);
  let done = false;
  let steps = 0;
  for (let pos = 0; pos < config.maxLength; pos++) {
    const step = await backend.decodeStep(tokens, pos, memory, cache);
    steps++;
    const vocab = step.vocab;
    const scores = new Float64Array(k * vocab);
    for (let j = 0; j < k; j++) {
      const logp = logSoftmax(step.logits, j * vocab, vocab);
      for (let t = 0; t < vocab; t++) scores[j * vocab + t] = logp[t] + beamScores[j];
    }
    const nextRows = new Array(k).fill(0);
    const nextTokens = new Array(k).fill(eosId);
    const nextScores = new Float64Array(k).fill(-1e9);
    const nextPrefixes = Array.from({ length: k }, () => []);
    const length = pos + 1; // generated tokens including the one chosen now
    let filled = 0;
    for (const flat of topStable(scores, 2 * k)) {
      const srcRow = Math.floor(flat / vocab);
      const token = flat % vocab;
      const score = scores[flat];
      if (token === eosId) {
        finished.add(lengthNormalised(score, length, config.lengthPenalty), prefixes[srcRow]);
        continue;
      }
      nextRows[filled] = srcRow;
      nextTokens[filled] = token;
      nextScores[filled] = score;
      nextPrefixes[filled] = [...prefixes[srcRow], token];
      filled++;
      if (filled === k) break;
    }
    done = finished.isDone(nextScores[0], length, config);
    if (done) break;
    cache = backend.takeCache(step.cache, nextRows); // the cache rule: rows by source hypothesis
    tokens = nextTokens;
    beamScores = nextScores;
    prefixes = nextPrefixes;
  }
  if (!done) {
    // ran out of length: running beams compete with finished ones
    for (let j = 0; j < k; j++) {
      finished.add(lengthNormalised(beamScores[j], prefixes[j].length, config.lengthPenalty), prefixes[j]);
    }
  }
  return { tokens: finished.items[0][1], steps };
}
