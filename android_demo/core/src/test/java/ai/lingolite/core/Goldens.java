package ai.lingolite.core;

import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import java.util.Map;

/** The golden files written by {@code scripts/make_android_goldens.py}. Never skipped: missing
 * goldens fail the test with the command that makes them. */
final class Goldens {
  static final String PROPERTY = "lingolite.goldens";

  private Goldens() {}

  static Path dir() {
    String value = System.getProperty(PROPERTY);
    if (value == null || value.isEmpty()) {
      fail(
          "system property -D" + PROPERTY + " is not set. Run the Java tests through "
              + "`python -m pytest tests/test_android_java.py` (which writes the goldens), or "
              + "write them with `python scripts/make_android_goldens.py --out DIR --data "
              + "../shared/data/multi30k` and pass -D" + PROPERTY + "=DIR");
    }
    Path dir = Paths.get(value);
    if (!Files.isDirectory(dir)) {
      fail(PROPERTY + "=" + value + " is not a folder");
    }
    return dir;
  }

  static Map<String, Object> read(String name) {
    Path path = dir().resolve(name);
    try {
      String text = new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
      return Json.asObject(Json.parse(text), path.toString());
    } catch (IOException exc) {
      throw new AssertionError("cannot read golden file " + path + ": " + exc, exc);
    }
  }

  static int[] ints(Object list, String what) {
    List<Object> items = Json.asArray(list, what);
    int[] out = new int[items.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = Json.asInt(items.get(i), what + "[" + i + "]");
    }
    return out;
  }
}
