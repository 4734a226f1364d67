// Text in, text out: segmentation (lib/segment.js), the tokenizer (lib/tokenizer.js), one backend
// and the search (lib/search.js), as runtime/translator.py does it for each sentence.
import { generate, searchConfig } from "./search.js";
import { segment, splitLong } from "./segment.js";

export class TranslatorError extends Error {}

export function countWords(text) {
  return text.split(/\s+/).filter(Boolean).length;
}

export class Translator {
  /** `bosId`/`eosId`: the manifest's tokenizer.bos_id/eos_id (the decoder's first input is
   * Marian's pad), by default the tokenizer's own. */
  constructor(tokenizer, backend, directions, { bosId = tokenizer.bosId, eosId = tokenizer.eosId } = {}) {
    this.tokenizer = tokenizer;
    this.backend = backend;
    this.directions = directions;
    this.bosId = bosId;
    this.eosId = eosId;
  }

  /** `sentence`, or its clauses/word windows when longer than max_src_len (Translator._fit). */
  fit(sentence, tgt) {
    const fits = (text) => this.tokenizer.encodeSource(text, tgt).length <= this.backend.maxSrcLen;
    return splitLong(sentence, fits);
  }

  decode(ids) {
    const vocab = this.tokenizer.vocabSize;
    return this.tokenizer.decode(ids.map((i) => (i < vocab ? i : this.tokenizer.unkId)));
  }

  /** One piece of a sentence: its translation and timings. */
  async translatePiece(text, tgt, config) {
    const src = this.tokenizer.encodeSource(text, tgt);
    const out = await generate(this.backend, src, { bosId: this.bosId, eosId: this.eosId, config });
    // Finished hypotheses hold at most maxLength - 1 tokens (EOS took the last step).
    return { text: this.decode(out.tokens), truncated: out.tokens.length >= config.maxLength, ...out };
  }

  /**
   * Translate `text` from `src` into `tgt` as runtime/translator.py does: every sentence
   * translated (an over-long one in pieces joined by spaces), line breaks and the whitespace
   * between sentences kept. Returns {text, sentences, truncated, encodeMs, decodeMs, steps, words};
   * `truncated` says a sentence stopped at the length limit without an end-of-sentence token.
   */
  async translate(text, src, tgt, { numBeams = 1, maxLength = null } = {}) {
    const direction = `${src}-${tgt}`;
    if (!this.directions.includes(direction)) {
      throw new TranslatorError(
        `unsupported pair ${direction}: direction ${direction} was not trained; this model translates ${this.directions.join(", ")}`,
      );
    }
    const config = searchConfig(this.backend.maxTgtLen, { numBeams, maxLength });
    const stats = { sentences: 0, truncated: false, encodeMs: 0, decodeMs: 0, steps: 0, words: countWords(text) };
    const parts = [];
    for (const piece of segment(text, src)) {
      if (!piece.isSentence) {
        parts.push(piece.text);
        continue;
      }
      const outputs = [];
      for (const part of this.fit(piece.text, tgt)) {
        const out = await this.translatePiece(part, tgt, config);
        outputs.push(out.text);
        stats.truncated ||= out.truncated;
        stats.encodeMs += out.encodeMs;
        stats.decodeMs += out.decodeMs;
        stats.steps += out.steps;
      }
      parts.push(outputs.join(" "));
      stats.sentences++;
    }
    return { text: parts.join(""), ...stats };
  }
}
