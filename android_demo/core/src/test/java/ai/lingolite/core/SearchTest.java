package ai.lingolite.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.util.ArrayList;
import java.util.List;
import org.junit.Test;

/** Unit tests of the pieces of {@link Search} whose exact behaviour the goldens rely on. */
public class SearchTest {

  @Test
  public void topStableBreaksTiesByLowerIndexAndPutsNaNLast() {
    double[] s = {1.0, 3.0, Double.NaN, 3.0, 2.0, 3.0, -0.0, 0.0};
    assertArrayEquals(new int[] {1, 3, 5, 4, 0}, Search.topStable(s, 5));
    assertArrayEquals(new int[] {1, 3, 5, 4, 0, 6, 7, 2}, Search.topStable(s, 8));
    assertArrayEquals(new int[] {1, 3, 5, 4, 0, 6, 7, 2}, Search.topStable(s, 20));
  }

  @Test
  public void argmaxIsFirstMaximumLikeNumpy() {
    assertEquals(1, Search.argmax(new float[] {0f, 2f, 2f, 1f}));
    assertEquals(2, Search.argmax(new float[] {0f, 2f, Float.NaN, 3f}));
  }

  @Test
  public void pairwiseSumFollowsNumpyBlocking() {
    double[] a = new double[1000];
    for (int i = 0; i < a.length; i++) {
      a[i] = 1.0 / (i + 1);
    }
    double naive = 0.0;
    for (double v : a) {
      naive += v;
    }
    assertEquals(naive, Search.pairwiseSum(a, 0, a.length), 1e-12);
    assertEquals(6.0, Search.pairwiseSum(new double[] {1, 2, 3}, 0, 3), 0.0);
  }

  @Test
  public void logSoftmaxNormalises() {
    double[] logp = Search.logSoftmax(new float[] {1f, 2f, 3f, -1e4f});
    double total = 0;
    for (double v : logp) {
      total += Math.exp(v);
    }
    assertEquals(1.0, total, 1e-12);
    assertEquals(-Math.log1p(Math.exp(-1) + Math.exp(-2)), logp[2], 1e-15);
  }

  @Test
  public void configErrorsNameEveryBadValue() {
    try {
      new SearchConfig(0, 0, Double.NaN, false).validate(16);
      fail("invalid config accepted");
    } catch (IllegalArgumentException exc) {
      String m = exc.getMessage();
      assertTrue(m, m.contains("max_length must be in [1, 16], got 0"));
      assertTrue(m, m.contains("num_beams must be >= 1, got 0"));
      assertTrue(m, m.contains("length_penalty must be finite, got NaN"));
    }
    try {
      SearchConfig.greedy(17).validate(16);
      fail("max_length above max_tgt_len accepted");
    } catch (IllegalArgumentException expected) {
      assertTrue(expected.getMessage().contains("got 17"));
    }
  }

  /** A model whose logits favour token (pos + 3) and EOS from position 3; it records calls. */
  static final class CountingModel implements Seq2SeqModel<Object, List<Integer>> {
    final List<String> calls = new ArrayList<>();

    @Override
    public int maxTgtLen() {
      return 8;
    }

    @Override
    public Object encode(int[] srcIds) {
      return srcIds;
    }

    @Override
    public List<Integer> initCache() {
      return new ArrayList<>();
    }

    @Override
    public Step<List<Integer>> decodeStep(int token, int pos, Object memory, List<Integer> cache) {
      calls.add(pos + ":" + token);
      List<Integer> next = new ArrayList<>(cache);
      next.add(token);
      float[] logits = new float[10];
      logits[Math.min(pos + 3, 9)] = 2f;
      logits[2] = pos >= 3 ? 5f : -5f;
      return new Step<>(logits, next);
    }
  }

  @Test
  public void greedyStopsAtEosAndBeamSharesIdenticalFirstStep() {
    CountingModel model = new CountingModel();
    Search.Result greedy = Search.generate(model, new int[] {4, 2}, 1, 2, SearchConfig.greedy(8));
    assertArrayEquals(new int[] {3, 4, 5}, greedy.tokens);
    assertEquals(4, greedy.steps);

    CountingModel beamModel = new CountingModel();
    Search.Result beam =
        Search.generate(beamModel, new int[] {4, 2}, 1, 2, SearchConfig.beam(8, 3, 1.0));
    assertArrayEquals(new int[] {3, 4, 5}, beam.tokens);
    // At pos 0 all beams are BOS with the same start cache: one call, not three.
    assertEquals(1, beamModel.calls.stream().filter(c -> c.startsWith("0:")).count());
  }

  @Test
  public void sourceMustNotBeEmpty() {
    try {
      Search.generate(new CountingModel(), new int[0], 1, 2, SearchConfig.greedy(4));
      fail("empty source accepted");
    } catch (IllegalArgumentException expected) {
      assertTrue(expected.getMessage().contains("at least one token"));
    }
  }
}
