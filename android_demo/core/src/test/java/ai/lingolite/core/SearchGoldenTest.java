package ai.lingolite.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.Test;

/**
 * Java greedy and beam search replaying the logits Python's {@code lingolite.search.generate}
 * saw, keyed on the prefix fed so far: the same tokens must come out, and every prefix Java feeds
 * must be one Python fed (else the search or the cache rule diverged).
 */
public class SearchGoldenTest {

  /** Serves recorded logits by prefix; its cache is the prefix itself (an immutable int[]). */
  static final class ReplayModel implements Seq2SeqModel<int[], int[]> {
    private final Map<String, float[]> table = new HashMap<>();
    private final int maxTgtLen;
    int[] encoded;
    int calls;

    ReplayModel(Map<String, Object> golden) {
      maxTgtLen = Json.asInt(golden.get("max_tgt_len"), "max_tgt_len");
      for (Object o : Json.asArray(golden.get("table"), "table")) {
        List<Object> entry = Json.asArray(o, "table entry");
        List<Object> values = Json.asArray(entry.get(1), "logits");
        float[] logits = new float[values.size()];
        for (int i = 0; i < logits.length; i++) {
          logits[i] = (float) Json.asDouble(values.get(i), "logit"); // exact: float32 values
        }
        table.put(Arrays.toString(Goldens.ints(entry.get(0), "prefix")), logits);
      }
    }

    @Override
    public int maxTgtLen() {
      return maxTgtLen;
    }

    @Override
    public int[] encode(int[] srcIds) {
      encoded = srcIds.clone();
      return encoded;
    }

    @Override
    public int[] initCache() {
      return new int[0];
    }

    @Override
    public Step<int[]> decodeStep(int token, int pos, int[] memory, int[] cache) {
      calls++;
      if (cache.length != pos) {
        throw new AssertionError(
            "cache rule: step at pos " + pos + " got a cache holding " + cache.length + " tokens");
      }
      int[] prefix = Arrays.copyOf(cache, pos + 1);
      prefix[pos] = token;
      float[] logits = table.get(Arrays.toString(prefix));
      if (logits == null) {
        throw new AssertionError(
            "Java fed prefix " + Arrays.toString(prefix) + " which Python never fed");
      }
      return new Step<>(logits.clone(), prefix);
    }
  }

  @Test
  public void javaSearchReproducesPythonTokens() {
    List<Object> cases = Json.asArray(Goldens.read("search_golden.json").get("cases"), "cases");
    assertTrue("expected at least 15 search cases, got " + cases.size(), cases.size() >= 15);
    int greedy = 0;
    int beam = 0;
    for (Object o : cases) {
      Map<String, Object> c = Json.asObject(o, "case");
      String name = Json.asString(c.get("name"), "name");
      Map<String, Object> cfg = Json.asObject(c.get("config"), "config");
      SearchConfig config =
          new SearchConfig(
              Json.asInt(cfg.get("max_length"), "max_length"),
              Json.asInt(cfg.get("num_beams"), "num_beams"),
              Json.asDouble(cfg.get("length_penalty"), "length_penalty"),
              Json.asBoolean(cfg.get("early_stopping"), "early_stopping"));
      ReplayModel model = new ReplayModel(c);
      int[] src = Goldens.ints(c.get("src_ids"), "src_ids");
      Search.Result result =
          Search.generate(
              model, src, Json.asInt(c.get("bos_id"), "bos"), Json.asInt(c.get("eos_id"), "eos"),
              config);
      assertArrayEquals(name + " (" + config + ")", Goldens.ints(c.get("expected"), "expected"),
          result.tokens);
      assertArrayEquals(name + ": encode input", src, model.encoded);
      assertEquals(name + ": calls counted", model.calls, result.modelCalls);
      if (config.numBeams > 1) {
        beam++;
      } else {
        // Greedy feeds exactly what Python fed: one call per step, same count.
        assertEquals(name + ": decode_step calls",
            Json.asInt(c.get("python_decode_step_calls"), "calls"), result.modelCalls);
        greedy++;
      }
    }
    assertTrue("greedy cases", greedy >= 4);
    assertTrue("beam cases", beam >= 8);
  }
}
