package ai.lingolite.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tokenizer of an imported Marian (OPUS-MT) model, giving the ids and text of {@code
 * lingolite/marian_tokenizer.py}'s {@code MarianTokenizer}; read from the {@code
 * "marian-sentencepiece"} {@code vocab.json} of {@code export/vocab.py}.
 *
 * <p>The SentencePiece part is {@link SentencePieceTokenizer} on {@code source.spm}; this class
 * adds Marian's layer. Encoding: the text is split around the literal {@code </s>}, {@code
 * <unk>} and {@code <pad>} (each becomes its id); a part starting with {@code >>...<<} gives that
 * code as one piece; the rest is cut by SentencePiece into piece strings (an unknown run keeps
 * its surface) that are looked up in Marian's vocabulary ({@code <unk>} if absent). A source is
 * {@code pieces + [eos]} for a single-pair model, {@code [>>tgt<<] + pieces(" " + text) + [eos]}
 * for a multilingual-target one. Decoding drops eos, pad and unk, joins the pieces as
 * SentencePiece's {@code DecodePieces} does, turns U+2581 into spaces and strips Python's
 * whitespace from both ends.
 */
public final class MarianTokenizer implements TextTokenizer {
  public static final String VOCAB_TYPE = "marian-sentencepiece";
  private static final String SPACE_SYMBOL = "\u2581";
  private static final String[] SPECIALS = {"</s>", "<unk>", "<pad>"};
  private static final String[][] CLEAN_UP = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
    {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}
  };

  private final SentencePieceTokenizer source;
  private final String[] pieces;
  private final Map<String, Integer> ids = new HashMap<>();
  private final int padId;
  private final int bosId;
  private final int eosId;
  private final int unkId;
  private final String sourceLang;
  private final String targetLang; // null for a multilingual-target model
  private final Map<String, Integer> langIds;
  private final boolean cleanUp;

  private MarianTokenizer(Map<String, Object> vocab) {
    Object version = vocab.get("format_version");
    if (!(version instanceof Long) || (Long) version != SentencePieceTokenizer.VOCAB_FORMAT_VERSION) {
      throw new IllegalArgumentException("format_version " + Json.describe(version)
          + " is not supported (expected " + SentencePieceTokenizer.VOCAB_FORMAT_VERSION + ")");
    }
    source = SentencePieceTokenizer.fromJson(Json.asObject(vocab.get("source"), "source"));
    List<Object> list = Json.asArray(vocab.get("pieces"), "pieces");
    pieces = new String[list.size()];
    for (int i = 0; i < pieces.length; i++) {
      pieces[i] = Json.asString(list.get(i), "pieces[" + i + "]");
      if (ids.put(pieces[i], i) != null) {
        throw new IllegalArgumentException("piece '" + pieces[i] + "' is listed twice");
      }
    }
    List<String> problems = new ArrayList<>();
    padId = Json.asInt(vocab.get("pad_id"), "pad_id");
    bosId = Json.asInt(vocab.get("bos_id"), "bos_id");
    eosId = Json.asInt(vocab.get("eos_id"), "eos_id");
    unkId = Json.asInt(vocab.get("unk_id"), "unk_id");
    String[][] expected = {{"pad_id", "<pad>"}, {"eos_id", "</s>"}, {"unk_id", "<unk>"}};
    int[] actual = {padId, eosId, unkId};
    for (int k = 0; k < actual.length; k++) {
      Integer want = ids.get(expected[k][1]);
      if (want == null || want != actual[k]) {
        problems.add(expected[k][0] + " " + actual[k] + " is not the id of " + expected[k][1]
            + " (" + want + ")");
      }
    }
    if (bosId != padId) {
      problems.add("bos_id " + bosId + " must be the pad_id " + padId + " (Marian starts from pad)");
    }
    sourceLang = Json.asString(vocab.get("source_lang"), "source_lang");
    Object target = vocab.get("target_lang");
    targetLang = target == null ? null : Json.asString(target, "target_lang");
    Map<String, Integer> codes = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e : Json.asObject(vocab.get("lang_ids"), "lang_ids").entrySet()) {
      int id = Json.asInt(e.getValue(), "lang_ids." + e.getKey());
      String code = ">>" + e.getKey() + "<<";
      if (!Integer.valueOf(id).equals(ids.get(code))) {
        problems.add("lang_ids." + e.getKey() + " " + id + " is not the id of " + code);
      }
      codes.put(e.getKey(), id);
    }
    if ((targetLang == null) == codes.isEmpty()) {
      problems.add("target_lang must be given exactly when there are no language codes, got "
          + Json.describe(target) + " and " + codes.keySet());
    }
    langIds = Collections.unmodifiableMap(codes);
    cleanUp =
        Json.asBoolean(vocab.get("clean_up_tokenization_spaces"), "clean_up_tokenization_spaces");
    if (!problems.isEmpty()) {
      throw new IllegalArgumentException(String.join("; ", problems));
    }
  }

  /** Builds a tokenizer from a parsed {@code "marian-sentencepiece"} {@code vocab.json}. */
  public static MarianTokenizer fromJson(Map<String, Object> vocab) {
    if (!VOCAB_TYPE.equals(vocab.get("type"))) {
      throw new IllegalArgumentException(
          "type " + Json.describe(vocab.get("type")) + " is not '" + VOCAB_TYPE + "'");
    }
    return new MarianTokenizer(vocab);
  }

  // ------------------------------------------------------------------ properties

  @Override
  public int vocabSize() {
    return pieces.length;
  }

  @Override
  public int unkId() {
    return unkId;
  }

  @Override
  public int bosId() {
    return bosId;
  }

  @Override
  public int eosId() {
    return eosId;
  }

  @Override
  public int padId() {
    return padId;
  }

  @Override
  public Map<String, Integer> langIds() {
    return langIds;
  }

  public String sourceLang() {
    return sourceLang;
  }

  /** The target of a single-pair model; null for a multilingual-target one. */
  public String targetLang() {
    return targetLang;
  }

  /** The id of {@code >>lang<<}. */
  @Override
  public int langId(String lang) {
    Integer id = langIds.get(lang);
    if (id == null) {
      throw new IllegalArgumentException("no language code >>" + lang + "<< in this tokenizer; it has "
          + (langIds.isEmpty() ? "none (a single-pair model)" : langIds.keySet().toString()));
    }
    return id;
  }

  public String idToPiece(int id) {
    checkId(id);
    return pieces[id];
  }

  /** The id of {@code piece}, or {@link #unkId()} if the vocabulary lacks it. */
  public int pieceToId(String piece) {
    Integer id = ids.get(piece);
    return id == null ? unkId : id;
  }

  private void checkId(int id) {
    if (id < 0 || id >= pieces.length) {
      throw new IllegalArgumentException(
          "token ids [" + id + "] out of range [0, " + pieces.length + ")");
    }
  }

  // ------------------------------------------------------------------ encoding

  /** Ids of {@code text} as a source, without eos ({@code MarianTokenizer.encode}). */
  public int[] encode(String text) {
    List<Integer> out = new ArrayList<>();
    int from = 0;
    while (from <= text.length()) {
      int at = -1;
      String special = null;
      for (int i = from; i < text.length() && at < 0; i++) {
        for (String s : SPECIALS) {
          if (text.startsWith(s, i)) {
            at = i;
            special = s;
            break;
          }
        }
      }
      encodePart(at < 0 ? text.substring(from) : text.substring(from, at), out);
      if (at < 0) {
        break;
      }
      out.add(ids.get(special));
      from = at + special.length();
    }
    int[] result = new int[out.size()];
    for (int i = 0; i < result.length; i++) {
      result[i] = out.get(i);
    }
    return result;
  }

  private void encodePart(String part, List<Integer> out) {
    int end;
    if (part.startsWith(">>") && (end = part.indexOf("<<")) != -1) {
      out.add(pieceToId(part.substring(0, end + 2)));
      part = part.substring(end + 2);
    }
    if (!part.isEmpty()) {
      for (String piece : source.encodePieces(part)) {
        out.add(pieceToId(piece));
      }
    }
  }

  /**
   * {@code encode(text) + [eos]} for a single-pair model (whose target must be {@code tgtLang}),
   * {@code [>>tgtLang<<] + encode(" " + text) + [eos]} for a multilingual-target one; pieces cut
   * so that at most {@code maxLen} ids remain ({@code MarianTokenizer.encode_source}).
   */
  @Override
  public int[] encodeSource(String text, String tgtLang, int maxLen) {
    int[] tag;
    int[] body;
    if (!langIds.isEmpty()) {
      tag = new int[] {langId(tgtLang)};
      int[] all = encode(">>" + tgtLang + "<< " + text);
      body = java.util.Arrays.copyOfRange(all, 1, all.length);
    } else if (!tgtLang.equals(targetLang)) {
      throw new IllegalArgumentException("this model translates " + sourceLang + "-" + targetLang
          + " only, not into '" + tgtLang + "'");
    } else {
      tag = new int[0];
      body = encode(text);
    }
    if (maxLen < tag.length + 1) {
      throw new IllegalArgumentException("maxLen (" + maxLen + ") must be at least "
          + (tag.length + 1) + (tag.length > 0 ? " (code and eos)" : " (eos)"));
    }
    int keep = (int) Math.min(body.length, (long) maxLen - tag.length - 1);
    int[] out = new int[tag.length + keep + 1];
    System.arraycopy(tag, 0, out, 0, tag.length);
    System.arraycopy(body, 0, out, tag.length, keep);
    out[out.length - 1] = eosId;
    return out;
  }

  // ------------------------------------------------------------------ decoding

  /** Text of {@code ids}: eos, pad and unk dropped, language codes kept as text. */
  @Override
  public String decode(int[] tokenIds) {
    List<String> kept = new ArrayList<>(tokenIds.length);
    for (int id : tokenIds) {
      checkId(id);
      if (id != eosId && id != padId && id != unkId) {
        kept.add(pieces[id]);
      }
    }
    String text = pythonStrip(source.decodePieces(kept).replace(SPACE_SYMBOL, " "));
    if (cleanUp) {
      for (String[] rule : CLEAN_UP) {
        text = text.replace(rule[0], rule[1]);
      }
    }
    return text;
  }

  /** Python's {@code str.isspace} for one char (every such character is in the BMP). */
  static boolean isPythonSpace(char c) {
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0
        || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029
        || c == 0x202f || c == 0x205f || c == 0x3000;
  }

  /** Python's {@code str.strip()}: Java's {@code trim}/{@code strip} use other definitions. */
  static String pythonStrip(String s) {
    int begin = 0;
    int end = s.length();
    while (begin < end && isPythonSpace(s.charAt(begin))) {
      begin++;
    }
    while (end > begin && isPythonSpace(s.charAt(end - 1))) {
      end--;
    }
    return s.substring(begin, end);
  }
}
