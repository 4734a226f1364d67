package ai.lingolite.core;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * SentencePiece's normalizer ({@code normalizer.cc}), replayed from the model's own compiled rule.
 *
 * <p>The {@code precompiled_charsmap} is {@code <uint32 LE trie size><darts-clone double array
 * (uint32 LE units)><NUL-separated replacement strings>}. At each position the longest trie match
 * over the UTF-8 bytes is replaced by its string; without a match one character is copied as is.
 * User-defined symbols are matched first and copied unnormalized. Then the whitespace rules: drop
 * leading whitespace, add the dummy prefix, collapse runs of spaces, map ' ' to U+2581, drop
 * trailing U+2581 — exactly in the order of {@code Normalizer::Normalize}.
 */
final class SpmNormalizer {
  private static final byte[] SPACE = {' '};
  private static final byte[] SPACE_SYMBOL = "\u2581".getBytes(StandardCharsets.UTF_8);
  private static final byte[] REPLACEMENT = "\uFFFD".getBytes(StandardCharsets.UTF_8);

  private final int[] units; // empty: no rule (identity normalizer)
  private final byte[] replacements;
  private final boolean addDummyPrefix;
  private final boolean removeExtraWhitespaces;
  private final boolean escapeWhitespaces;
  private final List<byte[]> userDefined = new ArrayList<>();

  SpmNormalizer(
      byte[] charsmap,
      boolean addDummyPrefix,
      boolean removeExtraWhitespaces,
      boolean escapeWhitespaces,
      List<String> userDefinedSymbols) {
    this.addDummyPrefix = addDummyPrefix;
    this.removeExtraWhitespaces = removeExtraWhitespaces;
    this.escapeWhitespaces = escapeWhitespaces;
    for (String s : userDefinedSymbols) {
      userDefined.add(s.getBytes(StandardCharsets.UTF_8));
    }
    if (charsmap.length == 0) {
      units = new int[0];
      replacements = new byte[0];
      return;
    }
    if (charsmap.length <= 4) {
      throw new IllegalArgumentException("precompiled_charsmap is broken (too short)");
    }
    long trieSize = u32(charsmap, 0);
    if (trieSize >= charsmap.length - 4 || trieSize % 4 != 0) {
      throw new IllegalArgumentException(
          "precompiled_charsmap trie size " + trieSize + " does not fit its blob");
    }
    units = new int[(int) trieSize / 4];
    for (int i = 0; i < units.length; i++) {
      units[i] = (int) u32(charsmap, 4 + 4 * i);
    }
    int start = 4 + (int) trieSize;
    replacements = new byte[charsmap.length - start];
    System.arraycopy(charsmap, start, replacements, 0, replacements.length);
  }

  private static long u32(byte[] b, int at) {
    return (b[at] & 0xFFL)
        | (b[at + 1] & 0xFFL) << 8
        | (b[at + 2] & 0xFFL) << 16
        | (b[at + 3] & 0xFFL) << 24;
  }

  /** The normalized text, spaces already escaped to U+2581 when the model says so. */
  String normalize(String text) {
    byte[] in = text.getBytes(StandardCharsets.UTF_8);
    int pos = 0;
    if (removeExtraWhitespaces) { // drop heading whitespace
      while (pos < in.length) {
        Piece p = normalizePrefix(in, pos);
        if (!p.equalsBytes(SPACE)) {
          break;
        }
        pos += p.consumed;
      }
    }
    if (pos >= in.length) {
      return "";
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream(in.length * 3);
    if (addDummyPrefix) {
      appendSpace(out);
    }
    boolean isPrevSpace = removeExtraWhitespaces;
    while (pos < in.length) {
      Piece p = normalizePrefix(in, pos);
      int from = p.from;
      int to = p.from + p.length;
      while (isPrevSpace && from < to && p.source[from] == ' ') {
        from++; // a space after a space
      }
      if (from < to) {
        for (int i = from; i < to; i++) {
          if (escapeWhitespaces && p.source[i] == ' ') {
            out.write(SPACE_SYMBOL, 0, SPACE_SYMBOL.length);
          } else {
            out.write(p.source[i]);
          }
        }
        isPrevSpace = p.source[to - 1] == ' ';
      }
      pos += p.consumed;
      if (!removeExtraWhitespaces) {
        isPrevSpace = false;
      }
    }
    byte[] result = out.toByteArray();
    int end = result.length;
    if (removeExtraWhitespaces) { // drop trailing whitespace
      byte[] space = escapeWhitespaces ? SPACE_SYMBOL : SPACE;
      while (endsWith(result, end, space)) {
        end -= space.length;
      }
    }
    return new String(result, 0, end, StandardCharsets.UTF_8);
  }

  private void appendSpace(ByteArrayOutputStream out) {
    byte[] space = escapeWhitespaces ? SPACE_SYMBOL : SPACE;
    out.write(space, 0, space.length);
  }

  private static boolean endsWith(byte[] b, int end, byte[] suffix) {
    if (end < suffix.length) {
      return false;
    }
    for (int i = 0; i < suffix.length; i++) {
      if (b[end - suffix.length + i] != suffix[i]) {
        return false;
      }
    }
    return true;
  }

  /** {@code Normalizer::NormalizePrefix}: the replacement for the text at {@code pos}. */
  private Piece normalizePrefix(byte[] in, int pos) {
    int udLen = 0;
    for (byte[] symbol : userDefined) { // longest user-defined symbol, copied as is
      if (symbol.length > udLen && startsWith(in, pos, symbol)) {
        udLen = symbol.length;
      }
    }
    if (udLen > 0) {
      return new Piece(in, pos, udLen, udLen);
    }
    int longestLength = 0;
    int longestValue = 0;
    if (units.length > 0) {
      int nodePos = offset(units[0]);
      for (int i = pos; i < in.length; i++) {
        int c = in[i] & 0xFF;
        nodePos ^= c;
        if (nodePos < 0 || nodePos >= units.length) {
          break;
        }
        int unit = units[nodePos];
        if ((unit & 0x800000FF) != c) { // label
          break;
        }
        nodePos ^= offset(unit);
        if (((unit >>> 8) & 1) == 1) { // has_leaf: matches come in increasing length
          if (nodePos < 0 || nodePos >= units.length) {
            break;
          }
          longestLength = i - pos + 1;
          longestValue = units[nodePos] & 0x7FFFFFFF;
        }
      }
    }
    if (longestLength == 0) {
      int len = validUtf8Length(in, pos);
      if (len == 0) { // malformed: U+FFFD, consuming one byte
        return new Piece(REPLACEMENT, 0, REPLACEMENT.length, 1);
      }
      return new Piece(in, pos, len, len);
    }
    int end = longestValue;
    while (end < replacements.length && replacements[end] != 0) {
      end++;
    }
    return new Piece(replacements, longestValue, end - longestValue, longestLength);
  }

  private static int offset(int unit) {
    return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
  }

  private static boolean startsWith(byte[] in, int pos, byte[] prefix) {
    if (in.length - pos < prefix.length) {
      return false;
    }
    for (int i = 0; i < prefix.length; i++) {
      if (in[pos + i] != prefix[i]) {
        return false;
      }
    }
    return true;
  }

  /** Byte length of the well-formed UTF-8 character at {@code pos}, or 0 if malformed. */
  private static int validUtf8Length(byte[] in, int pos) {
    int b = in[pos] & 0xFF;
    int len;
    int min;
    if (b < 0x80) {
      return 1;
    } else if (b >= 0xC2 && b < 0xE0) {
      len = 2;
      min = 0x80;
    } else if (b >= 0xE0 && b < 0xF0) {
      len = 3;
      min = 0x800;
    } else if (b >= 0xF0 && b < 0xF5) {
      len = 4;
      min = 0x10000;
    } else {
      return 0;
    }
    if (pos + len > in.length) {
      return 0;
    }
    int cp = b & (0xFF >> (len + 1));
    for (int i = 1; i < len; i++) {
      int cont = in[pos + i] & 0xFF;
      if ((cont & 0xC0) != 0x80) {
        return 0;
      }
      cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return 0;
    }
    return len;
  }

  /** A slice {@code source[from, from + length)} standing for {@code consumed} input bytes. */
  private static final class Piece {
    final byte[] source;
    final int from;
    final int length;
    final int consumed;

    Piece(byte[] source, int from, int length, int consumed) {
      this.source = source;
      this.from = from;
      this.length = length;
      this.consumed = consumed;
    }

    boolean equalsBytes(byte[] other) {
      if (other.length != length) {
        return false;
      }
      for (int i = 0; i < length; i++) {
        if (source[from + i] != other[i]) {
          return false;
        }
      }
      return true;
    }
  }
}
