package ai.lingolite.core;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The Java tokenizer against Python SentencePiece: normalized text, ids and decoded text of every
 * golden sentence (all of test_2016_flickr in every served language, plus stress strings), decodes
 * of random id sequences, and {@code encode_source} with length limits.
 */
public class TokenizerGoldenTest {
  private static final int SHOW = 15;

  private static SentencePieceTokenizer load(Map<String, Object> golden) throws Exception {
    String vocab = Json.asString(golden.get("vocab"), "vocab");
    return SentencePieceTokenizer.load(Goldens.dir().resolve(vocab));
  }

  private static String show(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (int i = 0; i < s.length(); ) {
      int cp = s.codePointAt(i);
      out.append(cp >= 0x20 && cp < 0x7F ? String.valueOf((char) cp) : String.format("\\u{%x}", cp));
      i += Character.charCount(cp);
    }
    return out.append('"').toString();
  }

  private static String pieces(SentencePieceTokenizer tok, int[] ids) {
    List<String> out = new ArrayList<>();
    for (int id : ids) {
      out.add(id >= 0 && id < tok.vocabSize() ? tok.idToPiece(id) : "?" + id);
    }
    return out.toString();
  }

  /** Checks every case and fails once, listing the first mismatches and counts per language. */
  private static void checkCases(String goldenName) throws Exception {
    Map<String, Object> golden = Goldens.read(goldenName);
    SentencePieceTokenizer tok = load(golden);
    List<String> failures = new ArrayList<>();
    Map<String, int[]> perLang = new LinkedHashMap<>(); // lang -> {cases, failures}
    for (Object o : Json.asArray(golden.get("cases"), "cases")) {
      Map<String, Object> c = Json.asObject(o, "case");
      String lang = Json.asString(c.get("lang"), "lang");
      String text = Json.asString(c.get("text"), "text");
      int[] want = Goldens.ints(c.get("ids"), "ids");
      String wantNorm = Json.asString(c.get("normalized"), "normalized");
      String wantText = Json.asString(c.get("decoded"), "decoded");
      int[] counts = perLang.computeIfAbsent(lang, k -> new int[2]);
      counts[0]++;
      String norm = tok.normalize(text);
      int[] got = tok.encode(text);
      String decoded = tok.decode(want);
      List<String> what = new ArrayList<>();
      if (!norm.equals(wantNorm)) {
        what.add("normalized " + show(norm) + " != python " + show(wantNorm));
      }
      if (!Arrays.equals(got, want)) {
        what.add("ids " + pieces(tok, got) + " != python " + pieces(tok, want));
      }
      if (!decoded.equals(wantText)) {
        what.add("decoded " + show(decoded) + " != python " + show(wantText));
      }
      if (!what.isEmpty()) {
        counts[1]++;
        failures.add("[" + lang + "] " + show(text) + ": " + String.join("; ", what));
      }
    }
    StringBuilder summary = new StringBuilder();
    for (Map.Entry<String, int[]> e : perLang.entrySet()) {
      summary.append(String.format(" %s %d/%d", e.getKey(), e.getValue()[0] - e.getValue()[1],
          e.getValue()[0]));
    }
    System.out.println(goldenName + ": exact on" + summary);
    if (!failures.isEmpty()) {
      fail(failures.size() + " mismatches with Python SentencePiece (" + goldenName + "):"
          + summary + "\n" + String.join("\n", failures.subList(0, Math.min(SHOW, failures.size()))));
    }
  }

  private static void checkDecodes(String goldenName) throws Exception {
    Map<String, Object> golden = Goldens.read(goldenName);
    SentencePieceTokenizer tok = load(golden);
    List<String> failures = new ArrayList<>();
    List<Object> cases = Json.asArray(golden.get("decode_cases"), "decode_cases");
    for (Object o : cases) {
      Map<String, Object> c = Json.asObject(o, "decode case");
      int[] ids = Goldens.ints(c.get("ids"), "ids");
      String want = Json.asString(c.get("text"), "text");
      String got = tok.decode(ids);
      if (!got.equals(want)) {
        failures.add(pieces(tok, ids) + ": " + show(got) + " != python " + show(want));
      }
    }
    assertTrue(goldenName + " has no decode cases", cases.size() > 100);
    if (!failures.isEmpty()) {
      fail(failures.size() + "/" + cases.size() + " decodes differ from Python:\n"
          + String.join("\n", failures.subList(0, Math.min(SHOW, failures.size()))));
    }
  }

  @Test
  public void lingoliteTokenizerMatchesSentencePieceOnTestSets() throws Exception {
    checkCases("tokenizer_golden.json");
  }

  /**
   * The browser demo's committed golden ({@code web_demo/test/golden/tokenizer.json.gz}, Python
   * SentencePiece on every test_2016_flickr sentence and every general dev-set line): the same
   * cases the JS tokenizer is checked on, long news sentences with near-tie paths included.
   */
  @Test
  public void tokenizerMatchesTheSharedWebGolden() throws Exception {
    String value = System.getProperty("lingolite.web_golden");
    if (value == null || value.isEmpty()) {
      fail("system property -Dlingolite.web_golden is not set (tests/test_android_java.py sets it)");
    }
    Map<String, Object> golden;
    try (java.io.InputStream in =
        new java.util.zip.GZIPInputStream(java.nio.file.Files.newInputStream(Paths.get(value)))) {
      golden = Json.asObject(Json.parse(new String(in.readAllBytes(), UTF_8)), value);
    }
    Map<String, Object> tokenizer = Goldens.read("tokenizer_golden.json");
    SentencePieceTokenizer tok = load(tokenizer);
    Map<String, Object> vocab =
        Json.asObject(
            Json.parse(
                new String(
                    java.nio.file.Files.readAllBytes(
                        Goldens.dir().resolve(Json.asString(tokenizer.get("vocab"), "vocab"))),
                    UTF_8)),
            "vocab");
    assertEquals(
        "the web golden was made from another spm.model",
        Json.asString(golden.get("spm_sha256"), "spm_sha256"),
        Json.asString(vocab.get("spm_sha256"), "vocab spm_sha256"));
    List<String> failures = new ArrayList<>();
    List<Object> cases = Json.asArray(golden.get("cases"), "cases");
    for (Object o : cases) {
      Map<String, Object> c = Json.asObject(o, "case");
      String text = Json.asString(c.get("text"), "text");
      String idText = Json.asString(c.get("ids"), "ids").trim();
      int[] want =
          idText.isEmpty()
              ? new int[0]
              : Arrays.stream(idText.split(" ")).mapToInt(Integer::parseInt).toArray();
      int[] got = tok.encode(text);
      if (!Arrays.equals(got, want)) {
        failures.add(
            "[" + Json.asString(c.get("set"), "set") + "] " + show(text) + ": ids "
                + pieces(tok, got) + " != python " + pieces(tok, want));
      }
    }
    assertTrue("the web golden has only " + cases.size() + " cases", cases.size() > 10000);
    System.out.println("web golden: exact on " + (cases.size() - failures.size()) + "/" + cases.size());
    if (!failures.isEmpty()) {
      fail(failures.size() + "/" + cases.size() + " cases differ from Python SentencePiece:\n"
          + String.join("\n", failures.subList(0, Math.min(SHOW, failures.size()))));
    }
  }

  @Test
  public void everyServedLanguageHasAllTestSentences() {
    Map<String, Object> golden = Goldens.read("tokenizer_golden.json");
    List<Object> languages = Json.asArray(golden.get("languages"), "languages");
    assertTrue("the golden lists no languages", !languages.isEmpty());
    Map<String, Integer> counts = new LinkedHashMap<>();
    for (Object o : Json.asArray(golden.get("cases"), "cases")) {
      counts.merge(Json.asString(Json.asObject(o, "case").get("lang"), "lang"), 1, Integer::sum);
    }
    Map<String, Object> lines = Json.asObject(golden.get("test_sentences"), "test_sentences");
    for (Object lang : languages) {
      long n = Json.asLong(lines.get(lang), "test_sentences." + lang);
      assertTrue("no test_2016_flickr sentences for " + lang, n > 0);
      assertEquals("test_2016_flickr sentences checked for " + lang, Integer.valueOf((int) n),
          counts.get(lang));
    }
  }

  @Test
  public void userDefinedSymbolsAndOtherFlagsMatchSentencePiece() throws Exception {
    checkCases("udtok_golden.json");
  }

  @Test
  public void decodeMatchesSentencePiece() throws Exception {
    checkDecodes("tokenizer_golden.json");
    checkDecodes("udtok_golden.json");
  }

  @Test
  public void encodeSourceMatchesLingoliteTokenizer() throws Exception {
    Map<String, Object> golden = Goldens.read("tokenizer_golden.json");
    SentencePieceTokenizer tok = load(golden);
    List<Object> cases = Json.asArray(golden.get("source_cases"), "source_cases");
    assertTrue(cases.size() > 0);
    for (Object o : cases) {
      Map<String, Object> c = Json.asObject(o, "source case");
      String text = Json.asString(c.get("text"), "text");
      String lang = Json.asString(c.get("lang"), "lang");
      Object maxLen = c.get("max_len");
      int[] got = maxLen == null ? tok.encodeSource(text, lang)
          : tok.encodeSource(text, lang, Json.asInt(maxLen, "max_len"));
      assertArrayEquals(show(text) + " -> " + lang + " max_len " + maxLen,
          Goldens.ints(c.get("ids"), "ids"), got);
    }
  }

  @Test
  public void languageTagsAreControlSymbolsNotMatchedInText() throws Exception {
    SentencePieceTokenizer tok = load(Goldens.read("tokenizer_golden.json"));
    for (Map.Entry<String, Integer> e : tok.langIds().entrySet()) {
      assertEquals(e.getValue().intValue(), tok.langId(e.getKey()));
      assertEquals(SentencePieceTokenizer.PieceType.CONTROL, tok.pieceType(e.getValue()));
      for (int id : tok.encode("<2" + e.getKey() + ">")) {
        assertTrue("literal tag text must not give the tag id", id != e.getValue());
      }
    }
    try {
      tok.langId("xx");
      fail("an unknown language must be refused");
    } catch (IllegalArgumentException expected) {
      assertTrue(expected.getMessage(), expected.getMessage().contains("xx"));
    }
  }
}
