// Text in, text out: segmentation (lib/segment.js), the tokenizer (lib/tokenizer.js), one backend
// and the search (lib/search.js), as runtime/translator.py does it for each sentence.
import { generate, searchConfig } from "./search.js";
import { segment } from "./segment.js";

export class TranslatorError extends Error {}

export function countWords(text) {
  return text.split(/\s+/).filter(Boolean).length;
}

export class Translator {
  constructor(tokenizer, backend, directions) {
    this.tokenizer = tokenizer;
    this.backend = backend;
    this.directions = directions;
  }

  /** Ids of one sentence, cut to max_src_len as Translator._encode does. */
  encode(text, tgt) {
    const ids = this.tokenizer.encodeSource(text, tgt);
    if (ids.length <= this.backend.maxSrcLen) return ids;
    console.warn(`a sentence has ${ids.length} source tokens; truncated to max_src_len ${this.backend.maxSrcLen}`);
    return this.tokenizer.encodeSource(text, tgt, this.backend.maxSrcLen);
  }

  decode(ids) {
    const vocab = this.tokenizer.vocabSize;
    return this.tokenizer.decode(ids.map((i) => (i < vocab ? i : this.tokenizer.unkId)));
  }

  /** One sentence: its translation and timings. */
  async translateSentence(text, tgt, config) {
    const src = this.encode(text, tgt);
    const tok = this.tokenizer;
    const out = await generate(this.backend, src, { bosId: tok.bosId, eosId: tok.eosId, config });
    return { text: this.decode(out.tokens), ...out };
  }

  /**
   * Translate `text` from `src` into `tgt`: every sentence translated, line breaks and the
   * whitespace between sentences kept. Returns {text, sentences, encodeMs, decodeMs, steps, words}.
   */
  async translate(text, src, tgt, { numBeams = 1, maxLength = null } = {}) {
    const direction = `${src}-${tgt}`;
    if (!this.directions.includes(direction)) {
      throw new TranslatorError(`unsupported pair ${direction}; this model translates ${this.directions.join(", ")}`);
    }
    const config = searchConfig(this.backend.maxTgtLen, { numBeams, maxLength });
    const stats = { sentences: 0, encodeMs: 0, decodeMs: 0, steps: 0, words: countWords(text) };
    const parts = [];
    for (const piece of segment(text, src)) {
      if (!piece.isSentence) {
        parts.push(piece.text);
        continue;
      }
      const out = await this.translateSentence(piece.text, tgt, config);
      parts.push(out.text);
      stats.sentences++;
      stats.encodeMs += out.encodeMs;
      stats.decodeMs += out.decodeMs;
      stats.steps += out.steps;
    }
    return { text: parts.join(""), ...stats };
  }
}
