package ai.lingolite.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Map;
import org.junit.Test;

/** The vocab.json loader refuses ids that do not name the right piece, all problems at once. */
public class VocabValidationTest {
  private static final String PIECES =
      "[[\"<pad>\", 0.0, \"CONTROL\"], [\"<s>\", 0.0, \"CONTROL\"], [\"</s>\", 0.0, \"CONTROL\"],"
          + " [\"<unk>\", 0.0, \"UNKNOWN\"], [\"<2de>\", 0.0, \"CONTROL\"],"
          + " [\"<2en>\", 0.0, \"CONTROL\"], [\"\u2581a\", -1.0, \"NORMAL\"],"
          + " [\"b\", -2.0, \"NORMAL\"]]";

  private static Map<String, Object> vocab(String ids) {
    String text =
        "{\"format_version\": 1, \"type\": \"sentencepiece-unigram\", \"pieces\": " + PIECES
            + ", \"unk_surface\": \" \u2047 \", \"normalizer\": {\"add_dummy_prefix\": true,"
            + " \"remove_extra_whitespaces\": true, \"escape_whitespaces\": true,"
            + " \"precompiled_charsmap\": \"\"}, " + ids + "}";
    return Json.asObject(Json.parse(text), "vocab");
  }

  private static final String GOOD_IDS =
      "\"pad_id\": 0, \"bos_id\": 1, \"eos_id\": 2, \"unk_id\": 3,"
          + " \"lang_ids\": {\"de\": 4, \"en\": 5}";

  private static String refused(String ids) {
    try {
      SentencePieceTokenizer.fromJson(vocab(ids));
    } catch (IllegalArgumentException exc) {
      return exc.getMessage();
    }
    fail("accepted: " + ids);
    return "";
  }

  @Test
  public void validIdsLoad() {
    SentencePieceTokenizer tok = SentencePieceTokenizer.fromJson(vocab(GOOD_IDS));
    assertEquals(2, tok.eosId());
    assertEquals(Integer.valueOf(4), tok.langIds().get("de"));
  }

  @Test
  public void minusOneMeansNoSuchPiece() {
    SentencePieceTokenizer tok =
        SentencePieceTokenizer.fromJson(vocab(GOOD_IDS.replace("\"pad_id\": 0", "\"pad_id\": -1")));
    assertEquals(-1, tok.padId());
  }

  @Test
  public void negativeEosIdIsRefused() {
    String message = refused(GOOD_IDS.replace("\"eos_id\": 2", "\"eos_id\": -5"));
    assertTrue(message, message.contains("eos_id -5 is neither -1 (none) nor inside the vocabulary [0, 8)"));
  }

  @Test
  public void idsBeyondTheVocabularyAreRefused() {
    String message = refused(GOOD_IDS.replace("\"bos_id\": 1", "\"bos_id\": 8"));
    assertTrue(message, message.contains("bos_id 8 is neither -1 (none) nor inside the vocabulary"));
  }

  @Test
  public void languageTagsMustBeDistinctControlPiecesInRange() {
    String message =
        refused(GOOD_IDS.replace("{\"de\": 4, \"en\": 5}", "{\"de\": 6, \"en\": 99, \"fr\": 2}"));
    assertTrue(message, message.contains("lang_ids.de 6 is a NORMAL piece, not a CONTROL symbol"));
    assertTrue(message, message.contains("lang_ids.en 99 is outside the vocabulary [0, 8)"));
    assertTrue(message, message.contains("must be distinct"));
  }

  @Test
  public void declaredUnkIdMustBeTheUnknownPiece() {
    String message = refused(GOOD_IDS.replace("\"unk_id\": 3", "\"unk_id\": 5"));
    assertTrue(message, message.contains("unk_id 5 is not the UNKNOWN piece's id 3"));
  }
}
