// The JS Marian tokenizer against Python's MarianTokenizer (tests/marian_goldens.py: a single-pair,
// a multilingual-target and a clean-up model built offline): encode and encode_source ids (uncut
// and cut) of every golden text, and the text decode gives for those ids, target ids and random
// id sequences.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { MarianTokenizer, SentencePieceTokenizer, TokenizerError, loadTokenizer, pythonStrip } from "../lib/tokenizer.js";
import { Translator } from "../lib/translator.js";
import { envFile, readJson } from "./helpers.mjs";

const goldenFile = envFile("LINGOLITE_MARIAN_GOLDEN"); // marian_golden.json
const skip = goldenFile.why || false;

function tokenizers() {
  const golden = readJson(goldenFile.file);
  assert.equal(golden.tokenizers.length, 3);
  return golden.tokenizers.map((g) => ({ g, vocab: readJson(path.join(path.dirname(goldenFile.file), g.vocab)) }));
}

function check(what, failures, total, minimum) {
  assert.ok(total >= minimum, `${what}: only ${total} cases`);
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length}/${total} ${what} differ from Python`);
}

test("Marian vocabularies load with the golden ids", { skip }, () => {
  for (const { g, vocab } of tokenizers()) {
    const tok = loadTokenizer(vocab);
    assert.ok(tok instanceof MarianTokenizer);
    assert.deepEqual([tok.vocabSize, tok.eosId, tok.padId, tok.bosId, tok.unkId], [g.vocab_size, g.eos_id, g.pad_id, g.pad_id, g.unk_id]);
    assert.deepEqual(tok.langIds, g.lang_ids);
    for (const [code, id] of Object.entries(g.lang_ids)) assert.equal(tok.langId(code), id);
  }
});

test("Marian encode, encode_source and decode identical to Python", { skip }, () => {
  let counts = [0, 0, 0];
  const wrong = [[], [], []];
  for (const { g, vocab } of tokenizers()) {
    const tok = loadTokenizer(vocab);
    for (const c of g.encode_cases) {
      counts[0]++;
      const ids = tok.encode(c.text);
      if (ids.join(" ") !== c.ids.join(" ")) wrong[0].push({ name: g.name, text: c.text, ids, want: c.ids });
    }
    for (const c of g.source_cases) {
      counts[1]++;
      const ids = tok.encodeSource(c.text, c.lang, c.max_len ?? Infinity);
      if (ids.join(" ") !== c.ids.join(" ")) wrong[1].push({ name: g.name, lang: c.lang, max_len: c.max_len, text: c.text, ids, want: c.ids });
    }
    for (const c of g.decode_cases) {
      counts[2]++;
      const text = tok.decode(c.ids);
      if (text !== c.text) wrong[2].push({ name: g.name, ids: c.ids, text, want: c.text });
    }
  }
  check("encode cases", wrong[0], counts[0], 900);
  check("encode_source cases", wrong[1], counts[1], 4000);
  check("decode cases", wrong[2], counts[2], 4000);
});

test("Marian refuses bad requests and vocabularies", { skip }, () => {
  for (const { g, vocab } of tokenizers()) {
    const tok = loadTokenizer(vocab);
    for (const wrongTarget of g.wrong_targets) {
      assert.throws(() => tok.encodeSource("A dog.", wrongTarget), (e) => e instanceof TokenizerError && e.message.includes(wrongTarget));
    }
    const minimum = Object.keys(g.lang_ids).length ? 2 : 1;
    assert.throws(() => tok.encodeSource("A dog.", g.targets[0], minimum - 1), new RegExp(`at least ${minimum}`));
    assert.throws(() => tok.decode([tok.vocabSize]), /out of range/);
    assert.throws(() => new MarianTokenizer({ ...vocab, bos_id: vocab.eos_id }), /must be the pad_id/);
    assert.throws(() => new MarianTokenizer({ ...vocab, type: "sentencepiece-unigram" }), /is not 'marian-sentencepiece'/);
    assert.ok(loadTokenizer(vocab.source) instanceof SentencePieceTokenizer);
  }
});

test("the translator starts decoding from the manifest's bos id (Marian: pad)", { skip }, async () => {
  const { g, vocab } = tokenizers()[0];
  const tok = loadTokenizer(vocab);
  const seen = [];
  const hello = tok.encode("A dog.").filter((i) => i !== tok.unkId);
  const script = [hello[0], hello[1], tok.eosId];
  const backend = {
    maxSrcLen: 64,
    maxTgtLen: 8,
    async encode(src) {
      return src;
    },
    initCache() {
      return 0;
    },
    async decodeStep(tokens, pos, memory, cache) {
      seen.push(tokens[0]);
      const logits = new Float32Array(tok.vocabSize);
      logits[script[pos]] = 10;
      return { logits, vocab: tok.vocabSize, cache: cache + 1 };
    },
  };
  const translator = new Translator(tok, backend, [`en-${g.targets[0]}`], { bosId: g.bos_id, eosId: g.eos_id });
  const out = await translator.translate("A dog.", "en", g.targets[0]);
  assert.equal(seen[0], tok.padId); // the first decoder input is pad, not a bos piece
  assert.deepEqual(seen, [tok.padId, hello[0], hello[1]]);
  assert.equal(out.text, tok.decode(hello.slice(0, 2)));
  assert.equal(new Translator(tok, backend, []).bosId, tok.padId);
});

test("Python's whitespace is what str.isspace says", () => {
  assert.equal(pythonStrip("\u001c\u0085 a\u3000\u2029"), "a");
  assert.equal(pythonStrip(" \ufeffa\u180e "), "\ufeffa\u180e");
});
