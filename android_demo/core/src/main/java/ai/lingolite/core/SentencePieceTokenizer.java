package ai.lingolite.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A SentencePiece unigram tokenizer that gives the ids of the Python/C++ library, read from the
 * {@code vocab.json} written by {@code export/vocab.py}.
 *
 * <p>Encoding is SentencePiece's: normalize ({@link SpmNormalizer}), then the Viterbi search of
 * {@code unigram::Model::EncodeOptimized} over the pieces (NORMAL and USER_DEFINED pieces are
 * candidates, UNUSED ones are skipped; a user-defined piece scores {@code len_bytes * FLT_MIN -
 * 0.1}, which beats any split; a character no piece covers becomes {@code <unk>} with score {@code
 * min_score - 10}), with the same float/double arithmetic (each candidate path score rounded to
 * float before the comparison) and the same tie-breaking (a later candidate replaces the best path
 * only if strictly better), and finally runs of {@code <unk>}
 * merged into one. Decoding drops control pieces, writes {@code <unk>} as its surface (" ⁇ "),
 * maps U+2581 to ' ' and removes the leading space(s) the dummy prefix created.
 *
 * <p>LingoLite's source convention ({@code lingolite/tokenizer.py}): {@code [<2tgt>] + pieces +
 * [eos]}, see {@link #encodeSource}.
 */
public final class SentencePieceTokenizer implements TextTokenizer {
  public static final int VOCAB_FORMAT_VERSION = 1;
  public static final String VOCAB_TYPE = "sentencepiece-unigram";
  private static final String SPACE_SYMBOL = "\u2581";
  /** SentencePiece's kUnkPenalty. */
  private static final float UNK_PENALTY = 10.0f;

  /** {@code ModelProto.SentencePiece.Type}. */
  public enum PieceType {
    NORMAL,
    UNKNOWN,
    CONTROL,
    USER_DEFINED,
    UNUSED,
    BYTE
  }

  private final String[] pieces;
  private final float[] scores;
  private final PieceType[] types;
  private final int[] utf8Lengths;
  private final Map<String, Integer> candidates = new HashMap<>(); // NORMAL, USER_DEFINED, UNUSED
  private final Map<String, Integer> reserved = new HashMap<>(); // CONTROL, UNKNOWN
  private final int maxPieceCodePoints;
  private final float minScore;
  private final float maxScore;
  private final int unkId;
  private final int bosId;
  private final int eosId;
  private final int padId;
  private final String unkSurface;
  private final boolean addDummyPrefix;
  private final boolean removeExtraWhitespaces;
  private final SpmNormalizer normalizer;
  private final Map<String, Integer> langIds;

  private SentencePieceTokenizer(Map<String, Object> vocab) {
    List<String> problems = new ArrayList<>();
    Object version = vocab.get("format_version");
    if (!(version instanceof Long) || (Long) version != VOCAB_FORMAT_VERSION) {
      problems.add(
          "format_version " + Json.describe(version) + " is not supported (expected "
              + VOCAB_FORMAT_VERSION + ")");
    }
    if (!VOCAB_TYPE.equals(vocab.get("type"))) {
      problems.add("type " + Json.describe(vocab.get("type")) + " is not '" + VOCAB_TYPE + "'");
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", problems));
    }
    List<Object> list = Json.asArray(vocab.get("pieces"), "pieces");
    int n = list.size();
    pieces = new String[n];
    scores = new float[n];
    types = new PieceType[n];
    utf8Lengths = new int[n];
    List<String> userDefined = new ArrayList<>();
    float min = Float.MAX_VALUE;
    float max = Float.MIN_NORMAL; // C's FLT_MIN, as in unigram::Model
    int maxCp = 1;
    int unk = -1;
    for (int i = 0; i < n; i++) {
      List<Object> entry = Json.asArray(list.get(i), "pieces[" + i + "]");
      if (entry.size() != 3) {
        throw new IllegalArgumentException("pieces[" + i + "] must be [piece, score, type]");
      }
      String piece = Json.asString(entry.get(0), "pieces[" + i + "][0]");
      double score = Json.asDouble(entry.get(1), "pieces[" + i + "][1]");
      PieceType type;
      try {
        type = PieceType.valueOf(Json.asString(entry.get(2), "pieces[" + i + "][2]"));
      } catch (IllegalArgumentException exc) {
        throw new IllegalArgumentException("pieces[" + i + "] has unknown type " + entry.get(2));
      }
      if (piece.isEmpty()) {
        throw new IllegalArgumentException("pieces[" + i + "] is empty");
      }
      pieces[i] = piece;
      scores[i] = (float) score; // exact: the file holds float32 values
      types[i] = type;
      utf8Lengths[i] = piece.getBytes(StandardCharsets.UTF_8).length;
      Map<String, Integer> target;
      switch (type) {
        case NORMAL:
          min = Math.min(min, scores[i]);
          max = Math.max(max, scores[i]);
          target = candidates;
          break;
        case USER_DEFINED:
          userDefined.add(piece);
          target = candidates;
          break;
        case UNUSED:
          target = candidates;
          break;
        case UNKNOWN:
          if (unk >= 0) {
            throw new IllegalArgumentException("unk is defined twice (ids " + unk + ", " + i + ")");
          }
          unk = i;
          target = reserved;
          break;
        case CONTROL:
          target = reserved;
          break;
        default: // BYTE
          throw new IllegalArgumentException(
              "byte pieces (byte_fallback) are not supported: pieces[" + i + "]");
      }
      if (target.put(piece, i) != null) {
        throw new IllegalArgumentException("piece '" + piece + "' is defined twice");
      }
      if (target == candidates) {
        maxCp = Math.max(maxCp, piece.codePointCount(0, piece.length()));
      }
    }
    if (unk < 0) {
      throw new IllegalArgumentException("the vocabulary has no UNKNOWN piece");
    }
    unkId = unk;
    minScore = min;
    maxScore = max;
    maxPieceCodePoints = maxCp;
    bosId = optionalId(vocab, "bos_id");
    eosId = optionalId(vocab, "eos_id");
    padId = optionalId(vocab, "pad_id");
    unkSurface = Json.asString(vocab.get("unk_surface"), "unk_surface");
    Map<String, Object> norm = Json.asObject(vocab.get("normalizer"), "normalizer");
    addDummyPrefix = Json.asBoolean(norm.get("add_dummy_prefix"), "normalizer.add_dummy_prefix");
    removeExtraWhitespaces =
        Json.asBoolean(
            norm.get("remove_extra_whitespaces"), "normalizer.remove_extra_whitespaces");
    boolean escape =
        Json.asBoolean(norm.get("escape_whitespaces"), "normalizer.escape_whitespaces");
    byte[] charsmap =
        Base64.getDecoder()
            .decode(
                Json.asString(
                    norm.get("precompiled_charsmap"), "normalizer.precompiled_charsmap"));
    normalizer = new SpmNormalizer(charsmap, addDummyPrefix, removeExtraWhitespaces, escape,
        userDefined);
    Map<String, Integer> ids = new LinkedHashMap<>();
    Object langs = vocab.get("lang_ids");
    if (langs instanceof Map) {
      for (Map.Entry<String, Object> e : Json.asObject(langs, "lang_ids").entrySet()) {
        ids.put(e.getKey(), Json.asInt(e.getValue(), "lang_ids." + e.getKey()));
      }
    }
    langIds = Collections.unmodifiableMap(ids);
    checkIds(vocab);
  }

  /** Every problem with the special and language-tag ids, reported at once. */
  private void checkIds(Map<String, Object> vocab) {
    List<String> problems = new ArrayList<>();
    Object declaredUnk = vocab.get("unk_id");
    if (declaredUnk != null && Json.asInt(declaredUnk, "unk_id") != unkId) {
      problems.add("unk_id " + declaredUnk + " is not the UNKNOWN piece's id " + unkId);
    }
    Map<String, Integer> special = new LinkedHashMap<>();
    special.put("unk_id", unkId);
    if (bosId >= 0) special.put("bos_id", bosId);
    if (eosId >= 0) special.put("eos_id", eosId);
    if (padId >= 0) special.put("pad_id", padId);
    for (Map.Entry<String, Integer> e : langIds.entrySet()) {
      int id = e.getValue();
      if (id < 0 || id >= pieces.length) {
        problems.add(
            "lang_ids." + e.getKey() + " " + id + " is outside the vocabulary [0, "
                + pieces.length + ")");
      } else if (types[id] != PieceType.CONTROL) {
        problems.add(
            "lang_ids." + e.getKey() + " " + id + " is a " + types[id]
                + " piece, not a CONTROL symbol");
      }
      special.put("lang_ids." + e.getKey(), id);
    }
    if (new java.util.HashSet<>(special.values()).size() != special.size()) {
      problems.add("special and language-tag ids must be distinct, got " + special);
    }
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", problems));
    }
  }

  /**
   * An optional special id: a missing key or -1 (how {@code export.vocab} writes a model without
   * that piece) is -1; any other value must name a piece.
   */
  private int optionalId(Map<String, Object> vocab, String key) {
    Object value = vocab.get(key);
    if (value == null) {
      return -1;
    }
    int id = Json.asInt(value, key);
    if (id != -1 && (id < 0 || id >= pieces.length)) {
      throw new IllegalArgumentException(
          key + " " + id + " is neither -1 (none) nor inside the vocabulary [0, " + pieces.length
              + ")");
    }
    return id;
  }

  /** Builds a tokenizer from a parsed {@code vocab.json}. */
  public static SentencePieceTokenizer fromJson(Map<String, Object> vocab) {
    return new SentencePieceTokenizer(vocab);
  }

  /** Reads {@code vocab.json}; any problem is an {@link ArtifactException} naming the file. */
  public static SentencePieceTokenizer load(Path vocabFile) throws ArtifactException {
    try {
      String text = new String(Files.readAllBytes(vocabFile), StandardCharsets.UTF_8);
      return fromJson(Json.asObject(Json.parse(text), vocabFile.toString()));
    } catch (IOException exc) {
      throw new ArtifactException("cannot read " + vocabFile + ": " + exc.getMessage(), exc);
    } catch (IllegalArgumentException exc) {
      throw new ArtifactException("invalid vocabulary " + vocabFile + ": " + exc.getMessage(), exc);
    }
  }

  // ------------------------------------------------------------------ properties

  public int vocabSize() {
    return pieces.length;
  }

  public int unkId() {
    return unkId;
  }

  public int bosId() {
    return bosId;
  }

  public int eosId() {
    return eosId;
  }

  public int padId() {
    return padId;
  }

  /** Language -> tag id as recorded in {@code vocab.json} (empty for a plain SentencePiece). */
  public Map<String, Integer> langIds() {
    return langIds;
  }

  public String idToPiece(int id) {
    checkId(id);
    return pieces[id];
  }

  public PieceType pieceType(int id) {
    checkId(id);
    return types[id];
  }

  /** The id of {@code piece}, or {@link #unkId()} if the vocabulary lacks it. */
  public int pieceToId(String piece) {
    Integer id = reserved.get(piece);
    if (id == null) {
      id = candidates.get(piece);
    }
    return id == null ? unkId : id;
  }

  /** The id of the target-language tag {@code <2lang>}; an error if there is no such tag. */
  public int langId(String lang) {
    String tag = "<2" + lang + ">";
    int id = pieceToId(tag);
    if (id == unkId || (types[id] != PieceType.CONTROL && types[id] != PieceType.USER_DEFINED)) {
      throw new IllegalArgumentException(
          "unknown language '" + lang + "': no tag " + tag + "; this tokenizer knows "
              + langIds.keySet());
    }
    return id;
  }

  private void checkId(int id) {
    if (id < 0 || id >= pieces.length) {
      throw new IllegalArgumentException(
          "token id " + id + " out of range [0, " + pieces.length + ")");
    }
  }

  // ------------------------------------------------------------------ encoding

  /** SentencePiece's normalization of {@code text} (spaces as U+2581 when escaped). */
  public String normalize(String text) {
    return normalizer.normalize(text);
  }

  /** Piece ids of {@code text}: no bos, eos or language tag. */
  public int[] encode(String text) {
    return bestPath(normalizer.normalize(text)).ids;
  }

  /**
   * The pieces of {@code text} as strings, as {@code encode(text, out_type=str)} gives them: a
   * (merged) run of unknown characters is its normalized surface, not {@code <unk>}.
   */
  public String[] encodePieces(String text) {
    String s = normalizer.normalize(text);
    Segmentation path = bestPath(s);
    String[] out = new String[path.ids.length];
    for (int i = 0; i < out.length; i++) {
      out[i] = s.substring(path.begins[i], path.ends[i]);
    }
    return out;
  }

  /** Ids and char ranges of the best segmentation. */
  private static final class Segmentation {
    final int[] ids;
    final int[] begins;
    final int[] ends;

    Segmentation(int[] ids, int[] begins, int[] ends) {
      this.ids = ids;
      this.begins = begins;
      this.ends = ends;
    }
  }

  private Segmentation bestPath(String s) {
    int n = s.codePointCount(0, s.length());
    int[] charAt = new int[n + 1]; // char index of each code point
    int[] mblen = new int[n]; // UTF-8 byte length of each code point
    for (int i = 0, c = 0; i < n; i++) {
      charAt[i] = c;
      int cp = s.codePointAt(c);
      mblen[i] = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      c += Character.charCount(cp);
      charAt[i + 1] = c;
    }
    float[] best = new float[n + 1];
    int[] startsAt = new int[n + 1];
    int[] ids = new int[n + 1];
    java.util.Arrays.fill(startsAt, -1);
    float unkScore = minScore - UNK_PENALTY;
    for (int start = 0; start < n; start++) {
      float bestTill = best[start];
      boolean hasSingleNode = false;
      int longest = Math.min(maxPieceCodePoints, n - start);
      for (int len = 1; len <= longest; len++) {
        Integer found = candidates.get(s.substring(charAt[start], charAt[start + len]));
        if (found == null) {
          continue;
        }
        int id = found;
        if (types[id] == PieceType.UNUSED) {
          continue;
        }
        // The candidate path score is rounded to float before it is compared, as the Python
        // wheel (sentencepiece 0.2) behaves and web_demo/lib/tokenizer.js mirrors: comparing the
        // unrounded double sum (what the C++ source reads like) picks other pieces on near-ties
        // in long sentences (5 of the 14,027 cases of web_demo/test/golden/tokenizer.json.gz).
        double score =
            types[id] == PieceType.USER_DEFINED
                ? ((float) utf8Lengths[id] * maxScore) - 0.1
                : (double) scores[id];
        float candidate = (float) (score + (double) bestTill);
        int end = start + len;
        if (startsAt[end] == -1 || candidate > best[end]) {
          best[end] = candidate;
          startsAt[end] = start;
          ids[end] = id;
        }
        if (len == 1) {
          hasSingleNode = true;
        }
      }
      if (!hasSingleNode) {
        float candidate = unkScore + bestTill; // float arithmetic, as in C++
        int end = start + 1;
        if (startsAt[end] == -1 || candidate > best[end]) {
          best[end] = candidate;
          startsAt[end] = start;
          ids[end] = unkId;
        }
      }
    }
    List<Integer> reversed = new ArrayList<>();
    for (int end = n; end > 0; end = startsAt[end]) {
      reversed.add(end);
    }
    List<int[]> out = new ArrayList<>(reversed.size()); // {id, begin cp, end cp}
    for (int i = reversed.size() - 1; i >= 0; i--) {
      int end = reversed.get(i);
      int id = ids[end];
      if (id == unkId && !out.isEmpty() && out.get(out.size() - 1)[0] == unkId) {
        out.get(out.size() - 1)[2] = end; // SentencePiece merges a run of unknown pieces
        continue;
      }
      out.add(new int[] {id, startsAt[end], end});
    }
    int[] resultIds = new int[out.size()];
    int[] begins = new int[out.size()];
    int[] ends = new int[out.size()];
    for (int i = 0; i < resultIds.length; i++) {
      resultIds[i] = out.get(i)[0];
      begins[i] = charAt[out.get(i)[1]];
      ends[i] = charAt[out.get(i)[2]];
    }
    return new Segmentation(resultIds, begins, ends);
  }

  /** {@code [<2tgtLang>] + encode(text) + [eos]}, with no length limit. */
  public int[] encodeSource(String text, String tgtLang) {
    return encodeSource(text, tgtLang, Integer.MAX_VALUE);
  }

  /**
   * {@code [<2tgtLang>] + encode(text) + [eos]}, pieces cut so that the result has at most {@code
   * maxLen} ids (as {@code Tokenizer.encode_source(text, tgt_lang, max_len)}).
   */
  public int[] encodeSource(String text, String tgtLang, int maxLen) {
    if (maxLen < 2) {
      throw new IllegalArgumentException("maxLen (" + maxLen + ") must be at least 2 (tag and eos)");
    }
    if (eosId < 0) {
      throw new IllegalStateException("this vocabulary has no eos piece");
    }
    int tag = langId(tgtLang);
    int[] body = encode(text);
    int keep = (int) Math.min(body.length, (long) maxLen - 2);
    int[] out = new int[keep + 2];
    out[0] = tag;
    System.arraycopy(body, 0, out, 1, keep);
    out[keep + 1] = eosId;
    return out;
  }

  // ------------------------------------------------------------------ decoding

  /** Text of {@code ids} as {@code SentencePieceProcessor::Decode} writes it. */
  public String decode(int[] ids) {
    List<String> list = new ArrayList<>(ids.length);
    for (int raw : ids) {
      checkId(raw);
      list.add(pieces[raw]);
    }
    return decodePieces(list);
  }

  /**
   * Text of piece strings as {@code SentencePieceProcessor::DecodePieces} writes it: each piece
   * is looked up ({@link #pieceToId}); a control piece is dropped, {@code <unk>} is its surface,
   * and a piece the vocabulary lacks is kept as it is (U+2581 included).
   */
  public String decodePieces(List<String> pieceList) {
    StringBuilder text = new StringBuilder();
    boolean isBosWs = true; // still expecting the dummy-prefix space to strip
    boolean bosWsSeen = false;
    for (String piece : pieceList) {
      int id = pieceToId(piece);
      if (bosWsSeen || text.length() > 0) {
        isBosWs = false;
      }
      String decoded;
      bosWsSeen = false;
      if (types[id] == PieceType.CONTROL) {
        decoded = "";
      } else if (types[id] == PieceType.UNKNOWN) {
        decoded = pieces[id].equals(piece) ? unkSurface : piece;
      } else {
        String p = piece;
        if (isBosWs && (addDummyPrefix || removeExtraWhitespaces) && p.startsWith(SPACE_SYMBOL)) {
          p = p.substring(SPACE_SYMBOL.length());
          // With remove_extra_whitespaces every leading space goes, so keep expecting one.
          bosWsSeen = !removeExtraWhitespaces;
        }
        decoded = p.replace(SPACE_SYMBOL, " ");
      }
      text.append(decoded);
    }
    return text.toString();
  }
}
