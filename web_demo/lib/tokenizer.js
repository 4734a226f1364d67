// A SentencePiece unigram tokenizer giving the ids of the Python/C++ library, read from the
// `vocab.json` every export writes (export/vocab.py). A line-by-line port of the Android core's
// SentencePieceTokenizer.java and SpmNormalizer.java (see their comments for the C++ they mirror):
// normalize by replaying the model's compiled charsmap (a darts-clone double-array trie over UTF-8
// bytes), then the Viterbi search of unigram::Model::EncodeOptimized with C++'s float/double
// arithmetic (Math.fround where C++ rounds to float) and tie-breaking, then runs of <unk> merged.
// MarianTokenizer adds the layer of an imported OPUS-MT model (MarianTokenizer.java, and
// lingolite/marian_tokenizer.py, which both mirror); loadTokenizer picks the class by "type".

const SPACE_SYMBOL = "\u2581";
const UNK_PENALTY = 10.0;
const FLT_MIN = 1.1754943508222875e-38; // C's FLT_MIN, the start of unigram::Model's max score
const VOCAB_FORMAT_VERSION = 1;
const VOCAB_TYPE = "sentencepiece-unigram";
const PIECE_TYPES = ["NORMAL", "UNKNOWN", "CONTROL", "USER_DEFINED", "UNUSED", "BYTE"];

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");
const SPACE = utf8.encode(" ");
const SPACE_SYMBOL_BYTES = utf8.encode(SPACE_SYMBOL);
const REPLACEMENT = utf8.encode("\uFFFD");

export class TokenizerError extends Error {}

function base64ToBytes(b64) {
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

function startsWith(bytes, pos, prefix) {
  if (bytes.length - pos < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[pos + i] !== prefix[i]) return false;
  return true;
}

function sliceEquals(src, from, length, other) {
  if (length !== other.length) return false;
  for (let i = 0; i < length; i++) if (src[from + i] !== other[i]) return false;
  return true;
}

/** Byte length of the well-formed UTF-8 character at `pos`, or 0 if malformed. */
function validUtf8Length(bytes, pos) {
  const b = bytes[pos];
  let len;
  let min;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b < 0xe0) [len, min] = [2, 0x80];
  else if (b >= 0xe0 && b < 0xf0) [len, min] = [3, 0x800];
  else if (b >= 0xf0 && b < 0xf5) [len, min] = [4, 0x10000];
  else return 0;
  if (pos + len > bytes.length) return 0;
  let cp = b & (0xff >> (len + 1));
  for (let i = 1; i < len; i++) {
    const cont = bytes[pos + i];
    if ((cont & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (cont & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

/** SentencePiece's Normalizer::Normalize, replayed from the model's precompiled charsmap. */
class Normalizer {
  constructor(charsmap, addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces, userDefined) {
    this.addDummyPrefix = addDummyPrefix;
    this.removeExtraWhitespaces = removeExtraWhitespaces;
    this.escapeWhitespaces = escapeWhitespaces;
    this.userDefined = userDefined.map((s) => utf8.encode(s));
    this.units = new Uint32Array(0);
    this.replacements = new Uint8Array(0);
    if (charsmap.length === 0) return;
    if (charsmap.length <= 4) throw new TokenizerError("precompiled_charsmap is broken (too short)");
    const view = new DataView(charsmap.buffer, charsmap.byteOffset, charsmap.byteLength);
    const trieSize = view.getUint32(0, true);
    if (trieSize >= charsmap.length - 4 || trieSize % 4 !== 0) {
      throw new TokenizerError(`precompiled_charsmap trie size ${trieSize} does not fit its blob`);
    }
    this.units = new Uint32Array(trieSize / 4);
    for (let i = 0; i < this.units.length; i++) this.units[i] = view.getUint32(4 + 4 * i, true);
    this.replacements = charsmap.slice(4 + trieSize);
  }

  /** The normalized text, spaces already escaped to U+2581 when the model says so. */
  normalize(text) {
    const input = utf8.encode(text);
    let pos = 0;
    if (this.removeExtraWhitespaces) {
      while (pos < input.length) {
        const p = this.normalizePrefix(input, pos);
        if (!sliceEquals(p.source, p.from, p.length, SPACE)) break;
        pos += p.consumed;
      }
    }
    if (pos >= input.length) return "";
    const out = [];
    const space = this.escapeWhitespaces ? SPACE_SYMBOL_BYTES : SPACE;
    if (this.addDummyPrefix) out.push(...space);
    let isPrevSpace = this.removeExtraWhitespaces;
    while (pos < input.length) {
      const p = this.normalizePrefix(input, pos);
      let from = p.from;
      const to = p.from + p.length;
      while (isPrevSpace && from < to && p.source[from] === 0x20) from++;
      if (from < to) {
        for (let i = from; i < to; i++) {
          if (this.escapeWhitespaces && p.source[i] === 0x20) out.push(...SPACE_SYMBOL_BYTES);
          else out.push(p.source[i]);
        }
        isPrevSpace = p.source[to - 1] === 0x20;
      }
      pos += p.consumed;
      if (!this.removeExtraWhitespaces) isPrevSpace = false;
    }
    let end = out.length;
    if (this.removeExtraWhitespaces) {
      while (end >= space.length && sliceEquals(out, end - space.length, space.length, space)) {
        end -= space.length;
      }
    }
    return utf8Decoder.decode(Uint8Array.from(out.slice(0, end)));
  }

  /** Normalizer::NormalizePrefix: {source, from, length, consumed} for the text at `pos`. */
  normalizePrefix(input, pos) {
    let udLen = 0;
    for (const symbol of this.userDefined) {
      if (symbol.length > udLen && startsWith(input, pos, symbol)) udLen = symbol.length;
    }
    if (udLen > 0) return { source: input, from: pos, length: udLen, consumed: udLen };
    let longestLength = 0;
    let longestValue = 0;
    const units = this.units;
    if (units.length > 0) {
      let nodePos = offset(units[0]);
      for (let i = pos; i < input.length; i++) {
        const c = input[i];
        nodePos ^= c;
        if (nodePos < 0 || nodePos >= units.length) break;
        const unit = units[nodePos];
        if ((unit & 0x800000ff) >>> 0 !== c) break; // label
        nodePos ^= offset(unit);
        if (((unit >>> 8) & 1) === 1) {
          // has_leaf: matches come in increasing length
          if (nodePos < 0 || nodePos >= units.length) break;
          longestLength = i - pos + 1;
          longestValue = units[nodePos] & 0x7fffffff;
        }
      }
    }
    if (longestLength === 0) {
      const len = validUtf8Length(input, pos);
      if (len === 0) return { source: REPLACEMENT, from: 0, length: REPLACEMENT.length, consumed: 1 };
      return { source: input, from: pos, length: len, consumed: len };
    }
    let end = longestValue;
    while (end < this.replacements.length && this.replacements[end] !== 0) end++;
    return {
      source: this.replacements,
      from: longestValue,
      length: end - longestValue,
      consumed: longestLength,
    };
  }
}

function offset(unit) {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

function codePoints(s) {
  return Array.from(s).length;
}

function check(condition, problems, message) {
  if (!condition) problems.push(message);
}

/** The tokenizer of an export's `vocab.json` (already parsed). */
export class SentencePieceTokenizer {
  constructor(vocab) {
    const problems = [];
    check(
      vocab.format_version === VOCAB_FORMAT_VERSION,
      problems,
      `format_version ${JSON.stringify(vocab.format_version)} is not supported (expected ${VOCAB_FORMAT_VERSION})`,
    );
    check(vocab.type === VOCAB_TYPE, problems, `type ${JSON.stringify(vocab.type)} is not '${VOCAB_TYPE}'`);
    check(Array.isArray(vocab.pieces), problems, "pieces must be a list");
    const norm = vocab.normalizer;
    check(norm !== null && typeof norm === "object", problems, "normalizer must be an object");
    if (problems.length) throw new TokenizerError(problems.join("; "));

    const n = vocab.pieces.length;
    this.pieces = new Array(n);
    this.scores = new Float32Array(n);
    this.types = new Array(n);
    this.utf8Lengths = new Int32Array(n);
    this.candidates = new Map(); // NORMAL, USER_DEFINED, UNUSED
    this.reserved = new Map(); // CONTROL, UNKNOWN
    const userDefined = [];
    let min = 3.4028234663852886e38;
    let max = FLT_MIN;
    let maxCp = 1;
    let unk = -1;
    vocab.pieces.forEach((entry, i) => {
      if (!Array.isArray(entry) || entry.length !== 3) {
        throw new TokenizerError(`pieces[${i}] must be [piece, score, type]`);
      }
      const [piece, score, type] = entry;
      if (typeof piece !== "string" || piece === "") throw new TokenizerError(`pieces[${i}] is empty or not a string`);
      if (typeof score !== "number") throw new TokenizerError(`pieces[${i}] score ${JSON.stringify(score)} is not a number`);
      if (!PIECE_TYPES.includes(type)) throw new TokenizerError(`pieces[${i}] has unknown type ${JSON.stringify(type)}`);
      this.pieces[i] = piece;
      this.scores[i] = score; // exact: the file holds float32 values
      this.types[i] = type;
      this.utf8Lengths[i] = utf8.encode(piece).length;
      let target;
      if (type === "NORMAL") {
        min = Math.min(min, this.scores[i]);
        max = Math.max(max, this.scores[i]);
        target = this.candidates;
      } else if (type === "USER_DEFINED") {
        userDefined.push(piece);
        target = this.candidates;
      } else if (type === "UNUSED") {
        target = this.candidates;
      } else if (type === "UNKNOWN") {
        if (unk >= 0) throw new TokenizerError(`unk is defined twice (ids ${unk}, ${i})`);
        unk = i;
        target = this.reserved;
      } else if (type === "CONTROL") {
        target = this.reserved;
      } else {
        throw new TokenizerError(`byte pieces (byte_fallback) are not supported: pieces[${i}]`);
      }
      if (target.has(piece)) throw new TokenizerError(`piece '${piece}' is defined twice`);
      target.set(piece, i);
      if (target === this.candidates) maxCp = Math.max(maxCp, codePoints(piece));
    });
    if (unk < 0) throw new TokenizerError("the vocabulary has no UNKNOWN piece");
    this.unkId = unk;
    this.minScore = Math.fround(min);
    this.maxScore = Math.fround(max);
    this.maxPieceCodePoints = maxCp;
    this.bosId = this.optionalId(vocab, "bos_id");
    this.eosId = this.optionalId(vocab, "eos_id");
    this.padId = this.optionalId(vocab, "pad_id");
    if (typeof vocab.unk_surface !== "string") throw new TokenizerError("unk_surface must be a string");
    this.unkSurface = vocab.unk_surface;
    for (const key of ["add_dummy_prefix", "remove_extra_whitespaces", "escape_whitespaces"]) {
      if (typeof norm[key] !== "boolean") throw new TokenizerError(`normalizer.${key} must be a boolean`);
    }
    if (typeof norm.precompiled_charsmap !== "string") {
      throw new TokenizerError("normalizer.precompiled_charsmap must be a base64 string");
    }
    this.addDummyPrefix = norm.add_dummy_prefix;
    this.removeExtraWhitespaces = norm.remove_extra_whitespaces;
    this.normalizer = new Normalizer(
      base64ToBytes(norm.precompiled_charsmap),
      norm.add_dummy_prefix,
      norm.remove_extra_whitespaces,
      norm.escape_whitespaces,
      userDefined,
    );
    this.langIds = { ...(vocab.lang_ids ?? {}) };
  }

  optionalId(vocab, key) {
    const value = vocab[key];
    if (value === undefined || value === null) return -1;
    if (!Number.isInteger(value) || value >= this.pieces.length) {
      throw new TokenizerError(`${key} ${JSON.stringify(value)} is not an id of the vocabulary`);
    }
    return value;
  }

  get vocabSize() {
    return this.pieces.length;
  }

  /** The id of `piece`, or unkId if the vocabulary lacks it. */
  pieceToId(piece) {
    return this.reserved.get(piece) ?? this.candidates.get(piece) ?? this.unkId;
  }

  /** The id of the target-language tag <2lang>; an error if there is no such tag. */
  langId(lang) {
    const tag = `<2${lang}>`;
    const id = this.pieceToId(tag);
    if (id === this.unkId || (this.types[id] !== "CONTROL" && this.types[id] !== "USER_DEFINED")) {
      throw new TokenizerError(
        `unknown language '${lang}': no tag ${tag}; this tokenizer knows ${JSON.stringify(Object.keys(this.langIds))}`,
      );
    }
    return id;
  }

  normalize(text) {
    return this.normalizer.normalize(text);
  }

  /** Piece ids of `text`: no bos, eos or language tag. */
  encode(text) {
    return this.bestPath(this.normalizer.normalize(text)).ids;
  }

  /** The pieces of `text` as strings, as encode(text, out_type=str) gives them: a (merged) run
   * of unknown characters is its normalized surface, not <unk>. */
  encodePieces(text) {
    const s = this.normalizer.normalize(text);
    const path = this.bestPath(s);
    return path.ids.map((_, i) => s.substring(path.begins[i], path.ends[i]));
  }

  /** Ids and UTF-16 ranges of the best segmentation of normalized `s`. */
  bestPath(s) {
    const chars = Array.from(s); // code points
    const n = chars.length;
    const charAt = new Int32Array(n + 1); // UTF-16 index of each code point
    for (let i = 0, c = 0; i < n; i++) {
      charAt[i] = c;
      c += chars[i].length;
      charAt[i + 1] = c;
    }
    const best = new Float32Array(n + 1);
    const startsAt = new Int32Array(n + 1).fill(-1);
    const ids = new Int32Array(n + 1);
    const unkScore = Math.fround(this.minScore - UNK_PENALTY);
    for (let start = 0; start < n; start++) {
      const bestTill = best[start];
      let hasSingleNode = false;
      const longest = Math.min(this.maxPieceCodePoints, n - start);
      for (let len = 1; len <= longest; len++) {
        const id = this.candidates.get(s.substring(charAt[start], charAt[start + len]));
        if (id === undefined || this.types[id] === "UNUSED") continue;
        // The candidate path score is rounded to float before it is compared, as the Python
        // wheel (sentencepiece 0.2.3) behaves: comparing the unrounded double sum (what the C++
        // source reads like) picks other pieces on near-ties in long sentences (5 of the 14,027
        // golden cases, test/golden/tokenizer.json.gz). SentencePieceTokenizer.java does the same.
        const score =
          this.types[id] === "USER_DEFINED"
            ? Math.fround(this.utf8Lengths[id] * this.maxScore) - 0.1
            : this.scores[id];
        const candidate = Math.fround(score + bestTill);
        const end = start + len;
        if (startsAt[end] === -1 || candidate > best[end]) {
          best[end] = candidate;
          startsAt[end] = start;
          ids[end] = id;
        }
        if (len === 1) hasSingleNode = true;
      }
      if (!hasSingleNode) {
        const candidate = Math.fround(unkScore + bestTill); // float arithmetic, as in C++
        const end = start + 1;
        if (startsAt[end] === -1 || candidate > best[end]) {
          best[end] = candidate;
          startsAt[end] = start;
          ids[end] = this.unkId;
        }
      }
    }
    const reversed = [];
    for (let end = n; end > 0; end = startsAt[end]) reversed.push(end);
    const out = { ids: [], begins: [], ends: [] };
    for (let i = reversed.length - 1; i >= 0; i--) {
      const end = reversed[i];
      const id = ids[end];
      const last = out.ids.length - 1;
      if (id === this.unkId && last >= 0 && out.ids[last] === this.unkId) {
        out.ends[last] = charAt[end]; // SentencePiece merges a run of unknown pieces
        continue;
      }
      out.ids.push(id);
      out.begins.push(charAt[startsAt[end]]);
      out.ends.push(charAt[end]);
    }
    return out;
  }

  /** [<2tgtLang>] + encode(text) + [eos], pieces cut so that at most `maxLen` ids remain
   * (lingolite.tokenizer.Tokenizer.encode_source). */
  encodeSource(text, tgtLang, maxLen = Infinity) {
    if (!(maxLen >= 2)) throw new TokenizerError(`maxLen (${maxLen}) must be at least 2 (tag and eos)`);
    if (this.eosId < 0) throw new TokenizerError("this vocabulary has no eos piece");
    const tag = this.langId(tgtLang);
    const body = this.encode(text);
    return [tag, ...body.slice(0, Math.min(body.length, maxLen - 2)), this.eosId];
  }

  /** Text of `ids` as SentencePieceProcessor::Decode writes it. */
  decode(ids) {
    return this.decodePieces(
      ids.map((raw) => {
        if (!Number.isInteger(raw) || raw < 0 || raw >= this.pieces.length) {
          throw new TokenizerError(`token id ${raw} out of range [0, ${this.pieces.length})`);
        }
        return this.pieces[raw];
      }),
    );
  }

  /** Text of piece strings as SentencePieceProcessor::DecodePieces writes it: each piece is looked
   * up (pieceToId); a control piece is dropped, <unk> is its surface, and a piece the vocabulary
   * lacks is kept as it is (U+2581 included). */
  decodePieces(pieces) {
    let text = "";
    let isBosWs = true; // still expecting the dummy-prefix space to strip
    let bosWsSeen = false;
    for (const piece of pieces) {
      const id = this.pieceToId(piece);
      if (bosWsSeen || text.length > 0) isBosWs = false;
      bosWsSeen = false;
      let decoded;
      if (this.types[id] === "CONTROL") {
        decoded = "";
      } else if (this.types[id] === "UNKNOWN") {
        decoded = this.pieces[id] === piece ? this.unkSurface : piece;
      } else {
        let p = piece;
        if (isBosWs && (this.addDummyPrefix || this.removeExtraWhitespaces) && p.startsWith(SPACE_SYMBOL)) {
          p = p.substring(SPACE_SYMBOL.length);
          // With remove_extra_whitespaces every leading space goes, so keep expecting one.
          bosWsSeen = !this.removeExtraWhitespaces;
        }
        decoded = p.replaceAll(SPACE_SYMBOL, " ");
      }
      text += decoded;
    }
    return text;
  }
}

const MARIAN_TYPE = "marian-sentencepiece";
const MARIAN_SPECIALS = ["</s>", "<unk>", "<pad>"];
const CLEAN_UP = [
  [" .", "."], [" ?", "?"], [" !", "!"], [" ,", ","], [" ' ", "'"], [" n't", "n't"],
  [" 'm", "'m"], [" 's", "'s"], [" 've", "'ve"], [" 're", "'re"],
];

/** Python's str.isspace for one UTF-16 unit (every such character is in the BMP). */
function isPythonSpace(c) {
  return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c === 0x85 || c === 0xa0 ||
    c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Python's str.strip(): String.prototype.trim uses another definition (it strips U+FEFF and
 * keeps U+001C..U+001F and U+0085). */
export function pythonStrip(s) {
  let begin = 0;
  let end = s.length;
  while (begin < end && isPythonSpace(s.charCodeAt(begin))) begin++;
  while (end > begin && isPythonSpace(s.charCodeAt(end - 1))) end--;
  return s.substring(begin, end);
}

/**
 * The tokenizer of an imported Marian (OPUS-MT) model from its "marian-sentencepiece" vocab.json
 * (export/vocab.py), giving the ids and text of lingolite/marian_tokenizer.py: the text is split
 * around the literal </s>, <unk> and <pad> (each becomes its id); a part starting with >>...<<
 * gives that code as one piece; the rest is cut by source.spm (SentencePieceTokenizer) into piece
 * strings looked up in Marian's vocabulary (<unk> if absent). Sources end with eos, and start with
 * >>tgt<< for a multilingual-target model. Decoding drops eos, pad and unk, joins the pieces as
 * DecodePieces does, turns U+2581 into spaces and strips Python's whitespace.
 */
export class MarianTokenizer {
  constructor(vocab) {
    if (vocab.format_version !== VOCAB_FORMAT_VERSION) {
      throw new TokenizerError(`format_version ${JSON.stringify(vocab.format_version)} is not supported (expected ${VOCAB_FORMAT_VERSION})`);
    }
    if (vocab.type !== MARIAN_TYPE) throw new TokenizerError(`type ${JSON.stringify(vocab.type)} is not '${MARIAN_TYPE}'`);
    if (!Array.isArray(vocab.pieces)) throw new TokenizerError("pieces must be a list");
    if (vocab.source === null || typeof vocab.source !== "object") throw new TokenizerError("source must be an object");
    this.source = new SentencePieceTokenizer(vocab.source);
    this.pieces = vocab.pieces;
    this.ids = new Map();
    vocab.pieces.forEach((piece, i) => {
      if (typeof piece !== "string") throw new TokenizerError(`pieces[${i}] is not a string`);
      if (this.ids.has(piece)) throw new TokenizerError(`piece '${piece}' is listed twice`);
      this.ids.set(piece, i);
    });
    const problems = [];
    for (const [key, piece] of [["pad_id", "<pad>"], ["eos_id", "</s>"], ["unk_id", "<unk>"]]) {
      if (vocab[key] !== this.ids.get(piece)) problems.push(`${key} ${JSON.stringify(vocab[key])} is not the id of ${piece} (${this.ids.get(piece)})`);
    }
    if (vocab.bos_id !== vocab.pad_id) problems.push(`bos_id ${vocab.bos_id} must be the pad_id ${vocab.pad_id} (Marian starts from pad)`);
    this.padId = vocab.pad_id;
    this.bosId = vocab.bos_id;
    this.eosId = vocab.eos_id;
    this.unkId = vocab.unk_id;
    this.sourceLang = vocab.source_lang;
    this.targetLang = vocab.target_lang ?? null;
    this.langIds = { ...(vocab.lang_ids ?? {}) };
    for (const [code, id] of Object.entries(this.langIds)) {
      if (this.ids.get(`>>${code}<<`) !== id) problems.push(`lang_ids.${code} ${id} is not the id of >>${code}<<`);
    }
    if ((this.targetLang === null) === (Object.keys(this.langIds).length === 0)) {
      problems.push("target_lang must be given exactly when there are no language codes");
    }
    if (typeof vocab.clean_up_tokenization_spaces !== "boolean") problems.push("clean_up_tokenization_spaces must be a boolean");
    this.cleanUp = vocab.clean_up_tokenization_spaces;
    if (problems.length) throw new TokenizerError(problems.join("; "));
  }

  get vocabSize() {
    return this.pieces.length;
  }

  /** The id of `piece`, or unkId if the vocabulary lacks it. */
  pieceToId(piece) {
    return this.ids.get(piece) ?? this.unkId;
  }

  /** The id of >>lang<<. */
  langId(lang) {
    const id = this.langIds[lang];
    if (id === undefined || !Object.hasOwn(this.langIds, lang)) {
      const known = Object.keys(this.langIds);
      throw new TokenizerError(`no language code >>${lang}<< in this tokenizer; it has ${known.length ? JSON.stringify(known) : "none (a single-pair model)"}`);
    }
    return id;
  }

  /** Ids of `text` as a source, without eos (MarianTokenizer.encode). */
  encode(text) {
    const out = [];
    let from = 0;
    for (;;) {
      let at = -1;
      let special = null;
      for (let i = from; i < text.length && at < 0; i++) {
        special = MARIAN_SPECIALS.find((s) => text.startsWith(s, i)) ?? null;
        if (special !== null) at = i;
      }
      this.encodePart(at < 0 ? text.substring(from) : text.substring(from, at), out);
      if (at < 0) return out;
      out.push(this.ids.get(special));
      from = at + special.length;
    }
  }

  encodePart(part, out) {
    let end;
    if (part.startsWith(">>") && (end = part.indexOf("<<")) !== -1) {
      out.push(this.pieceToId(part.substring(0, end + 2)));
      part = part.substring(end + 2);
    }
    if (part) for (const piece of this.source.encodePieces(part)) out.push(this.pieceToId(piece));
  }

  /** encode(text) + [eos] for a single-pair model (whose target must be tgtLang),
   * [>>tgtLang<<] + encode(" " + text) + [eos] for a multilingual-target one; pieces cut so that
   * at most `maxLen` ids remain (MarianTokenizer.encode_source). */
  encodeSource(text, tgtLang, maxLen = Infinity) {
    let tag;
    let body;
    if (Object.keys(this.langIds).length) {
      tag = [this.langId(tgtLang)];
      body = this.encode(`>>${tgtLang}<< ${text}`).slice(1);
    } else if (tgtLang !== this.targetLang) {
      throw new TokenizerError(`this model translates ${this.sourceLang}-${this.targetLang} only, not into '${tgtLang}'`);
    } else {
      tag = [];
      body = this.encode(text);
    }
    if (!(maxLen >= tag.length + 1)) {
      throw new TokenizerError(`maxLen (${maxLen}) must be at least ${tag.length + 1} (${tag.length ? "code and eos" : "eos"})`);
    }
    return [...tag, ...body.slice(0, Math.min(body.length, maxLen - tag.length - 1)), this.eosId];
  }

  /** Text of `ids`: eos, pad and unk dropped, language codes kept as text. */
  decode(ids) {
    const kept = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
        throw new TokenizerError(`token id ${id} out of range [0, ${this.pieces.length})`);
      }
      if (id !== this.eosId && id !== this.padId && id !== this.unkId) kept.push(this.pieces[id]);
    }
    let text = pythonStrip(this.source.decodePieces(kept).replaceAll(SPACE_SYMBOL, " "));
    if (this.cleanUp) for (const [before, after] of CLEAN_UP) text = text.replaceAll(before, after);
    return text;
  }
}

/** The tokenizer a parsed vocab.json describes: MarianTokenizer for "marian-sentencepiece",
 * else SentencePieceTokenizer (which refuses any other type, naming it). */
export function loadTokenizer(vocab) {
  return vocab?.type === MARIAN_TYPE ? new MarianTokenizer(vocab) : new SentencePieceTokenizer(vocab);
}
