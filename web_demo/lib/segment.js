// Sentence segmentation as the Python runtime does it (lingolite/segment.py): the text is split
// on "\n" (line and paragraph breaks kept verbatim as non-sentence segments, as is the whitespace
// around and between sentences), each line into sentences; the translation is the concatenation
// of every sentence translated and every other segment verbatim.
//
// Python uses sentencex 1.0.32 (Rust rules); its JS twin for the browser is npm sentencex 0.4.2
// (same project, older rules): test/segment.test.mjs measures how often they disagree.
import sentencex from "sentencex";

/** @returns {{text: string, isSentence: boolean}[]} whose texts join back to `text`. */
export function segment(text, lang) {
  const out = [];
  const push = (piece, isSentence) => {
    if (!piece) return;
    const last = out[out.length - 1];
    if (!isSentence && last && !last.isSentence) last.text += piece;
    else out.push({ text: piece, isSentence });
  };
  text.split("\n").forEach((line, i) => {
    if (i > 0) push("\n", false);
    let cursor = 0;
    for (const raw of line.trim() ? sentencex(lang, line) : []) {
      const sentence = raw.trim();
      const at = sentence ? line.indexOf(sentence, cursor) : -1;
      if (at < 0) continue; // not a piece of this line (never seen): its text stays in a gap
      push(line.slice(cursor, at), false);
      push(sentence, true);
      cursor = at + sentence.length;
    }
    push(line.slice(cursor), !!line.slice(cursor).trim());
  });
  return out;
}

// Where a long sentence may be cut, best first: after clause punctuation, then between words.
const CLAUSE_END = /(?<=[,;:\u2013\u2014)])\s+/u;
const SPACE = /\s+/u;

/**
 * Cut `sentence` into consecutive pieces that each `fits` (the model's source length), as
 * lingolite.segment.split_long: after clause punctuation where possible, then between words, and
 * only inside a word that does not fit alone; pieces as long as possible.
 */
export function splitLong(sentence, fits) {
  if (fits(sentence)) return [sentence];
  const out = [];
  for (const clause of merge(sentence.split(CLAUSE_END), fits)) {
    if (fits(clause)) {
      out.push(clause);
      continue;
    }
    for (const words of merge(clause.split(SPACE), fits)) {
      if (fits(words)) out.push(words);
      else out.push(...splitWord(words, fits));
    }
  }
  return out;
}

/** Greedily join consecutive `parts` with spaces while the result still fits. */
function merge(parts, fits) {
  const merged = [];
  for (const part of parts) {
    if (!part) continue;
    if (merged.length && fits(`${merged[merged.length - 1]} ${part}`)) {
      merged[merged.length - 1] = `${merged[merged.length - 1]} ${part}`;
    } else {
      merged.push(part);
    }
  }
  return merged;
}

/** Longest prefixes that fit, one after the other (at least one code point each). */
function splitWord(word, fits) {
  let chars = Array.from(word); // code points, as Python indexes strings
  const out = [];
  while (chars.length) {
    let lo = 1;
    let hi = chars.length;
    while (lo < hi) {
      const mid = Math.floor((lo + hi + 1) / 2);
      if (fits(chars.slice(0, mid).join(""))) lo = mid;
      else hi = mid - 1;
    }
    out.push(chars.slice(0, lo).join(""));
    chars = chars.slice(lo);
  }
  return out;
}
