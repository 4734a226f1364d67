package ai.lingolite.core;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.Test;

public class JsonTest {

  @Test
  public void parsesAllValueKinds() {
    Map<String, Object> m =
        Json.asObject(
            Json.parse(
                " {\"a\": 1, \"b\": -2.5e1, \"c\": [true, false, null], \"d\": {\"e\": \"x\"},"
                    + " \"big\": 12345678901234567890, \"zero\": 0, \"f\": 1.0} "),
            "doc");
    assertEquals(1L, m.get("a"));
    assertEquals(-25.0, m.get("b"));
    assertEquals(Arrays.asList(true, false, null), m.get("c"));
    assertEquals("x", Json.asObject(m.get("d"), "d").get("e"));
    assertEquals(1.2345678901234567e19, (Double) m.get("big"), 0.0);
    assertEquals(0L, m.get("zero"));
    assertEquals(1.0, m.get("f"));
    assertEquals(Arrays.asList("a", "b", "c", "d", "big", "zero", "f"),
        Arrays.asList(m.keySet().toArray()));
  }

  @Test
  public void decodesEscapesAndSurrogatePairs() {
    Object s = Json.parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u2581 \\ud83d\\ude00 ü\"");
    assertEquals("q\" b\\ s/ \b\f\n\r\t \u00e9 \u2581 \ud83d\ude00 \u00fc", s);
  }

  @Test
  public void float32ValuesRoundTripExactly() {
    float f = -3.6936569213867188f;
    List<Object> list = Json.asArray(Json.parse("[-3.6936569213867188, 1e-45]"), "list");
    assertEquals(Float.floatToIntBits(f), Float.floatToIntBits((float) (double) (Double) list.get(0)));
    assertEquals(Float.MIN_VALUE, (float) (double) (Double) list.get(1), 0.0f);
  }

  private static void assertInvalid(String text, String fragment) {
    try {
      Json.parse(text);
      fail("accepted invalid JSON: " + text);
    } catch (IllegalArgumentException expected) {
      assertTrue(expected.getMessage(), expected.getMessage().contains(fragment));
    }
  }

  @Test
  public void refusesInvalidDocuments() {
    assertInvalid("{\"a\": 1} x", "trailing content");
    assertInvalid("{\"a\": 1, \"a\": 2}", "duplicate key \"a\"");
    assertInvalid("[NaN]", "unexpected character 'N'");
    assertInvalid("[1,]", "unexpected character ']'");
    assertInvalid("{\"a\" 1}", "expected ':'");
    assertInvalid("\"abc", "unterminated string");
    assertInvalid("[01]", "expected ',' or ']'");
    assertInvalid("[1.]", "digits expected after '.'");
    assertInvalid("\"a\u0001\"", "control character");
    assertInvalid("", "unexpected end of input");
    assertInvalid("{\"x\": tru}", "expected 'true'");
  }

  @Test
  public void typedAccessorsNameTheField() {
    try {
      Json.asInt("3", "model.max_src_len");
      fail();
    } catch (IllegalArgumentException expected) {
      assertEquals("model.max_src_len must be an integer, got string \"3\"", expected.getMessage());
    }
    assertNull(Json.parse("null"));
  }
}
