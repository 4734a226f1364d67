package ai.lingolite.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON reader (RFC 8259) for the manifest, the vocabulary and the test goldens.
 *
 * <p>Values map to: object -> {@code LinkedHashMap<String, Object>} (duplicate keys are refused),
 * array -> {@code ArrayList<Object>}, string -> {@code String}, number -> {@code Long} when it
 * has no fraction or exponent and fits, else {@code Double}, true/false -> {@code Boolean}, null
 * -> {@code null}. NaN/Infinity and trailing content are errors. Errors name the offset.
 */
public final class Json {
  private final String text;
  private int pos;

  private Json(String text) {
    this.text = text;
  }

  /** Parses a complete JSON document. */
  public static Object parse(String text) {
    Json reader = new Json(text);
    reader.skipWhitespace();
    Object value = reader.readValue(0);
    reader.skipWhitespace();
    if (reader.pos != text.length()) {
      throw reader.error("trailing content after the JSON value");
    }
    return value;
  }

  // ------------------------------------------------------------------ typed accessors

  /** {@code value} as an object, or an error naming {@code what}. */
  @SuppressWarnings("unchecked")
  public static Map<String, Object> asObject(Object value, String what) {
    if (!(value instanceof Map)) {
      throw new IllegalArgumentException(what + " must be a JSON object, got " + describe(value));
    }
    return (Map<String, Object>) value;
  }

  @SuppressWarnings("unchecked")
  public static List<Object> asArray(Object value, String what) {
    if (!(value instanceof List)) {
      throw new IllegalArgumentException(what + " must be a JSON array, got " + describe(value));
    }
    return (List<Object>) value;
  }

  public static String asString(Object value, String what) {
    if (!(value instanceof String)) {
      throw new IllegalArgumentException(what + " must be a string, got " + describe(value));
    }
    return (String) value;
  }

  public static long asLong(Object value, String what) {
    if (!(value instanceof Long)) {
      throw new IllegalArgumentException(what + " must be an integer, got " + describe(value));
    }
    return (Long) value;
  }

  public static int asInt(Object value, String what) {
    long v = asLong(value, what);
    if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(what + " is out of the int range: " + v);
    }
    return (int) v;
  }

  /** Any JSON number as a double (integers convert exactly up to 2^53). */
  public static double asDouble(Object value, String what) {
    if (value instanceof Long) {
      return (Long) value;
    }
    if (!(value instanceof Double)) {
      throw new IllegalArgumentException(what + " must be a number, got " + describe(value));
    }
    return (Double) value;
  }

  public static boolean asBoolean(Object value, String what) {
    if (!(value instanceof Boolean)) {
      throw new IllegalArgumentException(what + " must be true or false, got " + describe(value));
    }
    return (Boolean) value;
  }

  /** A short description of a parsed value for error messages. */
  public static String describe(Object value) {
    if (value == null) {
      return "null";
    }
    if (value instanceof String) {
      String s = (String) value;
      return "string \"" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"";
    }
    if (value instanceof Map) {
      return "an object";
    }
    if (value instanceof List) {
      return "an array";
    }
    return value.getClass().getSimpleName().toLowerCase(java.util.Locale.ROOT) + " " + value;
  }

  // ------------------------------------------------------------------ parser

  private static final int MAX_DEPTH = 256;

  private IllegalArgumentException error(String message) {
    return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + message);
  }

  private void skipWhitespace() {
    while (pos < text.length()) {
      char c = text.charAt(pos);
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        return;
      }
      pos++;
    }
  }

  private Object readValue(int depth) {
    if (depth > MAX_DEPTH) {
      throw error("nesting deeper than " + MAX_DEPTH);
    }
    if (pos >= text.length()) {
      throw error("unexpected end of input");
    }
    char c = text.charAt(pos);
    switch (c) {
      case '{':
        return readObject(depth);
      case '[':
        return readArray(depth);
      case '"':
        return readString();
      case 't':
        expectWord("true");
        return Boolean.TRUE;
      case 'f':
        expectWord("false");
        return Boolean.FALSE;
      case 'n':
        expectWord("null");
        return null;
      default:
        if (c == '-' || (c >= '0' && c <= '9')) {
          return readNumber();
        }
        throw error("unexpected character '" + c + "'");
    }
  }

  private void expectWord(String word) {
    if (!text.startsWith(word, pos)) {
      throw error("expected '" + word + "'");
    }
    pos += word.length();
  }

  private Map<String, Object> readObject(int depth) {
    Map<String, Object> out = new LinkedHashMap<>();
    pos++; // '{'
    skipWhitespace();
    if (pos < text.length() && text.charAt(pos) == '}') {
      pos++;
      return out;
    }
    while (true) {
      skipWhitespace();
      if (pos >= text.length() || text.charAt(pos) != '"') {
        throw error("expected a string key");
      }
      String key = readString();
      skipWhitespace();
      if (pos >= text.length() || text.charAt(pos) != ':') {
        throw error("expected ':' after key \"" + key + "\"");
      }
      pos++;
      skipWhitespace();
      if (out.containsKey(key)) {
        throw error("duplicate key \"" + key + "\"");
      }
      out.put(key, readValue(depth + 1));
      skipWhitespace();
      if (pos >= text.length()) {
        throw error("unterminated object");
      }
      char c = text.charAt(pos++);
      if (c == '}') {
        return out;
      }
      if (c != ',') {
        pos--;
        throw error("expected ',' or '}' in object");
      }
    }
  }

  private List<Object> readArray(int depth) {
    List<Object> out = new ArrayList<>();
    pos++; // '['
    skipWhitespace();
    if (pos < text.length() && text.charAt(pos) == ']') {
      pos++;
      return out;
    }
    while (true) {
      skipWhitespace();
      out.add(readValue(depth + 1));
      skipWhitespace();
      if (pos >= text.length()) {
        throw error("unterminated array");
      }
      char c = text.charAt(pos++);
      if (c == ']') {
        return out;
      }
      if (c != ',') {
        pos--;
        throw error("expected ',' or ']' in array");
      }
    }
  }

  private String readString() {
    pos++; // opening quote
    StringBuilder out = new StringBuilder();
    while (true) {
      if (pos >= text.length()) {
        throw error("unterminated string");
      }
      char c = text.charAt(pos++);
      if (c == '"') {
        return out.toString();
      }
      if (c < 0x20) {
        pos--;
        throw error("control character U+" + String.format("%04X", (int) c) + " in string");
      }
      if (c != '\\') {
        out.append(c);
        continue;
      }
      if (pos >= text.length()) {
        throw error("unterminated escape");
      }
      char e = text.charAt(pos++);
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out.append(e);
          break;
        case 'b':
          out.append('\b');
          break;
        case 'f':
          out.append('\f');
          break;
        case 'n':
          out.append('\n');
          break;
        case 'r':
          out.append('\r');
          break;
        case 't':
          out.append('\t');
          break;
        case 'u':
          if (pos + 4 > text.length()) {
            throw error("truncated \\u escape");
          }
          int code = 0;
          for (int i = 0; i < 4; i++) {
            int digit = Character.digit(text.charAt(pos + i), 16);
            if (digit < 0) {
              throw error("bad hex digit in \\u escape");
            }
            code = code * 16 + digit;
          }
          pos += 4;
          out.append((char) code); // surrogate pairs arrive as two escapes and join up here
          break;
        default:
          pos--;
          throw error("bad escape '\\" + e + "'");
      }
    }
  }

  private Object readNumber() {
    int start = pos;
    if (text.charAt(pos) == '-') {
      pos++;
    }
    if (pos >= text.length()) {
      throw error("truncated number");
    }
    if (text.charAt(pos) == '0') {
      pos++;
    } else if (text.charAt(pos) >= '1' && text.charAt(pos) <= '9') {
      while (pos < text.length() && Character.isDigit(text.charAt(pos))) {
        pos++;
      }
    } else {
      throw error("bad number");
    }
    boolean integral = true;
    if (pos < text.length() && text.charAt(pos) == '.') {
      integral = false;
      pos++;
      int digits = skipDigits();
      if (digits == 0) {
        throw error("digits expected after '.'");
      }
    }
    if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
      integral = false;
      pos++;
      if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) {
        pos++;
      }
      if (skipDigits() == 0) {
        throw error("digits expected in exponent");
      }
    }
    String token = text.substring(start, pos);
    if (integral) {
      try {
        return Long.parseLong(token);
      } catch (NumberFormatException tooLarge) {
        return Double.parseDouble(token);
      }
    }
    return Double.parseDouble(token); // correctly rounded, so float32 values round-trip exactly
  }

  private int skipDigits() {
    int n = 0;
    while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') {
      pos++;
      n++;
    }
    return n;
  }
}
