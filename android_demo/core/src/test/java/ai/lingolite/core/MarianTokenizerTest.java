package ai.lingolite.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * The Java Marian tokenizer against Python's {@code MarianTokenizer} ({@code
 * tests/marian_goldens.py}: a single-pair, a multilingual-target and a clean-up model built
 * offline): {@code encode} and {@code encode_source} ids (uncut and cut) of every golden text,
 * and the text {@code decode} gives for those ids, target ids and random id sequences.
 */
public class MarianTokenizerTest {
  private static final int SHOW = 15;

  private static List<Map<String, Object>> tokenizers() {
    List<Map<String, Object>> out = new ArrayList<>();
    for (Object o : Json.asArray(Goldens.read("marian_golden.json").get("tokenizers"), "tokenizers")) {
      out.add(Json.asObject(o, "tokenizer"));
    }
    assertEquals(3, out.size());
    return out;
  }

  private static TextTokenizer load(Map<String, Object> golden) throws Exception {
    return TextTokenizer.load(Goldens.dir().resolve(Json.asString(golden.get("vocab"), "vocab")));
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

  private static void report(String what, List<String> failures, int total, int minimum) {
    assertTrue(what + ": only " + total + " cases", total >= minimum);
    System.out.println(what + ": exact on " + (total - failures.size()) + "/" + total);
    if (!failures.isEmpty()) {
      fail(failures.size() + "/" + total + " " + what + " differ from Python:\n"
          + String.join("\n", failures.subList(0, Math.min(SHOW, failures.size()))));
    }
  }

  @Test
  public void loadsAsMarianWithTheGoldenIds() throws Exception {
    for (Map<String, Object> golden : tokenizers()) {
      TextTokenizer tok = load(golden);
      assertTrue(tok instanceof MarianTokenizer);
      assertEquals(Json.asInt(golden.get("vocab_size"), "vocab_size"), tok.vocabSize());
      assertEquals(Json.asInt(golden.get("eos_id"), "eos_id"), tok.eosId());
      assertEquals(Json.asInt(golden.get("pad_id"), "pad_id"), tok.padId());
      assertEquals(tok.padId(), tok.bosId()); // Marian decodes from pad
      assertEquals(Json.asInt(golden.get("unk_id"), "unk_id"), tok.unkId());
      Map<String, Object> langIds = Json.asObject(golden.get("lang_ids"), "lang_ids");
      assertEquals(langIds.keySet(), tok.langIds().keySet());
      for (Map.Entry<String, Object> e : langIds.entrySet()) {
        assertEquals(Json.asInt(e.getValue(), "lang id"), tok.langId(e.getKey()));
      }
    }
  }

  @Test
  public void encodeMatchesPython() throws Exception {
    List<String> failures = new ArrayList<>();
    int total = 0;
    for (Map<String, Object> golden : tokenizers()) {
      MarianTokenizer tok = (MarianTokenizer) load(golden);
      String name = Json.asString(golden.get("name"), "name");
      for (Object o : Json.asArray(golden.get("encode_cases"), "encode_cases")) {
        Map<String, Object> c = Json.asObject(o, "case");
        String text = Json.asString(c.get("text"), "text");
        int[] want = Goldens.ints(c.get("ids"), "ids");
        int[] got = tok.encode(text);
        total++;
        if (!Arrays.equals(got, want)) {
          failures.add("[" + name + "] " + show(text) + ": " + Arrays.toString(got)
              + " != python " + Arrays.toString(want));
        }
      }
    }
    report("Marian encode cases", failures, total, 900);
  }

  @Test
  public void encodeSourceMatchesPython() throws Exception {
    List<String> failures = new ArrayList<>();
    int total = 0;
    for (Map<String, Object> golden : tokenizers()) {
      TextTokenizer tok = load(golden);
      String name = Json.asString(golden.get("name"), "name");
      for (Object o : Json.asArray(golden.get("source_cases"), "source_cases")) {
        Map<String, Object> c = Json.asObject(o, "case");
        String text = Json.asString(c.get("text"), "text");
        String lang = Json.asString(c.get("lang"), "lang");
        Object maxLen = c.get("max_len");
        int[] want = Goldens.ints(c.get("ids"), "ids");
        int[] got = maxLen == null ? tok.encodeSource(text, lang)
            : tok.encodeSource(text, lang, Json.asInt(maxLen, "max_len"));
        total++;
        if (!Arrays.equals(got, want)) {
          failures.add("[" + name + " -> " + lang + " max_len " + maxLen + "] " + show(text)
              + ": " + Arrays.toString(got) + " != python " + Arrays.toString(want));
        }
      }
    }
    report("Marian encode_source cases", failures, total, 4000);
  }

  @Test
  public void decodeMatchesPython() throws Exception {
    List<String> failures = new ArrayList<>();
    int total = 0;
    for (Map<String, Object> golden : tokenizers()) {
      TextTokenizer tok = load(golden);
      String name = Json.asString(golden.get("name"), "name");
      for (Object o : Json.asArray(golden.get("decode_cases"), "decode_cases")) {
        Map<String, Object> c = Json.asObject(o, "case");
        int[] ids = Goldens.ints(c.get("ids"), "ids");
        String want = Json.asString(c.get("text"), "text");
        String got = tok.decode(ids);
        total++;
        if (!got.equals(want)) {
          failures.add("[" + name + "] " + Arrays.toString(ids) + ": " + show(got) + " != python "
              + show(want));
        }
      }
    }
    report("Marian decode cases", failures, total, 4000);
  }

  @Test
  public void badRequestsAreRefused() throws Exception {
    for (Map<String, Object> golden : tokenizers()) {
      TextTokenizer tok = load(golden);
      String target = Json.asString(Json.asArray(golden.get("targets"), "targets").get(0), "t");
      for (Object wrong : Json.asArray(golden.get("wrong_targets"), "wrong_targets")) {
        try {
          tok.encodeSource("A dog.", Json.asString(wrong, "wrong target"));
          fail("target " + wrong + " must be refused by " + golden.get("name"));
        } catch (IllegalArgumentException expected) {
          assertTrue(expected.getMessage(), expected.getMessage().contains(wrong.toString()));
        }
      }
      int minimum = tok.langIds().isEmpty() ? 1 : 2;
      try {
        tok.encodeSource("A dog.", target, minimum - 1);
        fail("maxLen below " + minimum + " must be refused");
      } catch (IllegalArgumentException expected) {
        assertTrue(expected.getMessage(), expected.getMessage().contains("at least " + minimum));
      }
      try {
        tok.decode(new int[] {tok.vocabSize()});
        fail("an id past the vocabulary must be refused");
      } catch (IllegalArgumentException expected) {
        assertTrue(expected.getMessage(), expected.getMessage().contains("out of range"));
      }
    }
  }

  @Test
  public void pythonWhitespaceIsWhatStrIsspaceSays() {
    assertEquals("a", MarianTokenizer.pythonStrip("\u001c\u0085 a\u3000\u2029"));
    assertEquals("\ufeffa\u180e", MarianTokenizer.pythonStrip(" \ufeffa\u180e "));
  }
}
