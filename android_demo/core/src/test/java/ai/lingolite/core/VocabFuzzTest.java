package ai.lingolite.core;

import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Random;
import org.junit.Test;

/**
 * A seeded fuzz test of the {@code vocab.json} loader (issue 15 item 7, the Java side of
 * tests/test_fuzz_loaders.py): mutated documents either load and encode, or fail with the
 * documented {@link IllegalArgumentException} naming the problem; never another exception.
 */
public class VocabFuzzTest {
  private static final int EXAMPLES = 3000;
  private static final String VALID =
      "{\"format_version\": 1, \"type\": \"sentencepiece-unigram\", \"pieces\": [[\"<pad>\", 0.0,"
          + " \"CONTROL\"], [\"<s>\", 0.0, \"CONTROL\"], [\"</s>\", 0.0, \"CONTROL\"], [\"<unk>\","
          + " 0.0, \"UNKNOWN\"], [\"<2de>\", 0.0, \"CONTROL\"], [\"<2en>\", 0.0, \"CONTROL\"],"
          + " [\"\u2581a\", -1.0, \"NORMAL\"], [\"b\", -2.0, \"NORMAL\"], [\"<x>\", 0.0,"
          + " \"USER_DEFINED\"], [\"c\", -3.0, \"UNUSED\"]], \"unk_surface\": \" \u2047 \","
          + " \"normalizer\": {\"add_dummy_prefix\": true, \"remove_extra_whitespaces\": true,"
          + " \"escape_whitespaces\": true, \"precompiled_charsmap\": \"\"}, \"pad_id\": 0,"
          + " \"bos_id\": 1, \"eos_id\": 2, \"unk_id\": 3, \"lang_ids\": {\"de\": 4, \"en\": 5}}";
  private static final String CHARS = "{}[],:\"0-9.a\u2581 e";
  // Values that stress types and ranges when spliced in place of a token.
  private static final String[] TOKENS = {
    "-5", "-1", "0", "1e309", "-1e309", "2147483648", "9999999999999", "1.5", "NaN", "null", "true",
    "\"\"", "\"x\"", "[]", "{}", "[[]]", "\"\\ud800\"", "\"NORMAL\"", "\"CONTROL\"", "\"BYTE\"",
    "[\"a\", 1.0, \"NORMAL\"]", "{\"de\": 99}", "-0.0", "1e-45"
  };

  private static String mutate(String text, Random random) {
    StringBuilder out = new StringBuilder(text);
    int edits = 1 + random.nextInt(3);
    for (int e = 0; e < edits && out.length() > 0; e++) {
      int at = random.nextInt(out.length());
      switch (random.nextInt(5)) {
        case 0: // replace one character
          out.setCharAt(at, CHARS.charAt(random.nextInt(CHARS.length())));
          break;
        case 1: // delete a span
          out.delete(at, Math.min(out.length(), at + 1 + random.nextInt(12)));
          break;
        case 2: // duplicate a span
          out.insert(at, out.substring(at, Math.min(out.length(), at + 1 + random.nextInt(40))));
          break;
        default: // splice a token over the next number, string or literal
          int end = at;
          while (end < out.length() && ",]}".indexOf(out.charAt(end)) < 0) {
            end++;
          }
          int start = Math.max(out.lastIndexOf(",", at), out.lastIndexOf(":", at)) + 1;
          if (start > 0 && start <= end) {
            out.replace(start, end, " " + TOKENS[random.nextInt(TOKENS.length)]);
          }
      }
    }
    return out.toString();
  }

  @Test
  public void mutatedVocabulariesLoadOrFailWithTheDocumentedError() {
    Random random = new Random(20261201L);
    int loaded = 0;
    int refused = 0;
    for (int i = 0; i < EXAMPLES; i++) {
      String text = mutate(VALID, random);
      try {
        SentencePieceTokenizer tok =
            SentencePieceTokenizer.fromJson(Json.asObject(Json.parse(text), "vocab"));
        tok.encode("a b <x> c\u2047");
        loaded++;
      } catch (IllegalArgumentException exc) {
        assertTrue("an error without a message for " + text, exc.getMessage() != null);
        refused++;
      } catch (RuntimeException | StackOverflowError | OutOfMemoryError exc) {
        fail("example " + i + " raised " + exc + " for:\n" + text);
      }
    }
    System.out.println("vocab fuzz: " + loaded + " loaded, " + refused + " refused");
    assertTrue("the mutations never reached the loader's checks", refused > EXAMPLES / 10);
    assertTrue("no mutation kept a loadable vocabulary", loaded > 0);
  }
}
