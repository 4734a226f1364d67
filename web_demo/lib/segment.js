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
