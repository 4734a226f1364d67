// The JS tokenizer against Python SentencePiece: ids and decoded text of every case of the
// committed golden (every test_2016_flickr sentence of every Multi30k language, every line of
// the general dev sets, stress strings), for the tokenizer the golden was made from.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SentencePieceTokenizer, TokenizerError } from "../lib/tokenizer.js";
import { splitLong } from "../lib/segment.js";
import { GOLDEN, envFile, readJson } from "./helpers.mjs";

const vocabFile = envFile("LINGOLITE_WEB_VOCAB"); // vocab.json of pretrained/lingolite-tiny-multi30k
const golden = readJson(`${GOLDEN}/tokenizer.json.gz`);

test("golden covers every flickr language and the general dev sets", () => {
  const sets = Object.keys(golden.sets);
  for (const lang of ["cs", "de", "en", "fr"]) assert.ok(sets.includes(`test_2016_flickr.${lang}.gz`), lang);
  assert.ok(sets.some((s) => s.startsWith("tatoeba-dev")) && sets.some((s) => s.startsWith("newstest2018")));
  assert.ok(golden.cases.length > 10000, `only ${golden.cases.length} cases`);
});

test("ids and decoding identical to Python sentencepiece", { skip: vocabFile.why || false }, () => {
  const vocab = readJson(vocabFile.file);
  assert.equal(vocab.spm_sha256, golden.spm_sha256, "the golden was made from another spm.model");
  const tok = new SentencePieceTokenizer(vocab);
  const wrong = [];
  for (const c of golden.cases) {
    const ids = tok.encode(c.text);
    const want = c.ids === "" ? [] : c.ids.split(" ").map(Number);
    const decoded = tok.decode(want);
    const wantDecoded = c.decoded ?? c.text;
    if (ids.join(" ") !== c.ids || decoded !== wantDecoded) {
      wrong.push({ set: c.set, text: c.text, ids: ids.join(" "), want: c.ids, decoded, wantDecoded });
    }
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${golden.cases.length} cases differ`);
  for (const c of golden.source_cases) {
    assert.deepEqual(tok.encodeSource(c.text, c.lang, c.max_len ?? Infinity), c.ids, JSON.stringify(c));
  }
});

test("bad vocabularies and requests are refused with the value named", { skip: vocabFile.why || false }, () => {
  const vocab = readJson(vocabFile.file);
  const tok = new SentencePieceTokenizer(vocab);
  assert.throws(() => tok.langId("xx"), /unknown language 'xx': no tag <2xx>/);
  assert.throws(() => tok.decode([tok.vocabSize]), /token id 8000 out of range/);
  assert.throws(() => tok.encodeSource("a", "de", 1), /maxLen \(1\) must be at least 2/);
  assert.throws(() => new SentencePieceTokenizer({ ...vocab, format_version: 9 }), TokenizerError);
  assert.throws(() => new SentencePieceTokenizer({ ...vocab, type: "bpe" }), /type "bpe"/);
  const noUnk = vocab.pieces.map((p) => (p[2] === "UNKNOWN" ? [p[0], p[1], "CONTROL"] : p));
  assert.throws(() => new SentencePieceTokenizer({ ...vocab, pieces: noUnk }), /no UNKNOWN piece/);
  // A literal tag in user text is text, never the control symbol (as in Python).
  assert.ok(!tok.encode("<2de> Haus").includes(tok.langId("de")));
});

test("over-long sentences are cut like lingolite.segment.split_long", { skip: vocabFile.why || false }, () => {
  const tok = new SentencePieceTokenizer(readJson(vocabFile.file));
  assert.ok(golden.split_long.length >= 300, `${golden.split_long.length} cases`);
  let cut = 0;
  for (const c of golden.split_long) {
    const fits = (text) => tok.encodeSource(text, c.lang).length <= c.max_len;
    const pieces = splitLong(c.text, fits);
    assert.deepEqual(pieces, c.pieces, JSON.stringify({ text: c.text, max_len: c.max_len }));
    if (pieces.length > 1) cut++;
  }
  assert.ok(cut > 100, `only ${cut} cases were cut`);
});
