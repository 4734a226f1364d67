package ai.lingolite.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Greedy and beam search over a {@link Seq2SeqModel}: a line-by-line port of {@code
 * lingolite/search.py} for one sentence, so that the same logits give the same tokens.
 *
 * <p>What must match exactly, and how it does:
 *
 * <ul>
 *   <li>log-softmax in double: {@code x - max}, {@code log(sum(exp))} with numpy's pairwise
 *       summation order;
 *   <li>greedy takes the first maximal logit ({@code numpy.argmax});
 *   <li>beam search ranks the {@code k * V} candidates like {@code numpy.argsort(-scores,
 *       kind="stable")}: by score, ties by lower flat index {@code row * V + token}, keeping the
 *       best {@code 2k}; beams 1..k-1 start at -1e9; candidates ending in EOS go to the finished
 *       list with score {@code score / length^alpha} where length counts the EOS; the finished
 *       list keeps the best k, stable on ties; the sentence is done when k hypotheses are finished
 *       and (early stopping or) the best running beam, normalised at the current length, cannot
 *       beat the worst kept one; beams still running at {@code max_length} compete at their own
 *       length.
 * </ul>
 */
public final class Search {
  private Search() {}

  /** Tokens of a translation (without BOS and EOS) and how much decoding it took. */
  public static final class Result {
    public final int[] tokens;
    /** Decoder positions fed (loop iterations). */
    public final int steps;
    /** {@code decodeStep} calls (beam search makes up to k per step). */
    public final int modelCalls;

    Result(int[] tokens, int steps, int modelCalls) {
      this.tokens = tokens;
      this.steps = steps;
      this.modelCalls = modelCalls;
    }
  }

  /** Encodes {@code srcIds} and decodes one translation. */
  public static <S, C> Result generate(
      Seq2SeqModel<S, C> model, int[] srcIds, int bosId, int eosId, SearchConfig config) {
    config.validate(model.maxTgtLen());
    if (srcIds.length == 0) {
      throw new IllegalArgumentException("the source needs at least one token");
    }
    S memory = model.encode(srcIds);
    return decode(model, memory, bosId, eosId, config);
  }

  /** Decodes from an encoder state (so that callers can time encode and decode apart). */
  public static <S, C> Result decode(
      Seq2SeqModel<S, C> model, S memory, int bosId, int eosId, SearchConfig config) {
    config.validate(model.maxTgtLen());
    return config.numBeams > 1
        ? beamSearch(model, memory, bosId, eosId, config)
        : greedy(model, memory, bosId, eosId, config);
  }

  private static <S, C> Result greedy(
      Seq2SeqModel<S, C> model, S memory, int bosId, int eosId, SearchConfig config) {
    C cache = model.initCache();
    int token = bosId;
    List<Integer> out = new ArrayList<>();
    int steps = 0;
    for (int pos = 0; pos < config.maxLength; pos++) {
      Seq2SeqModel.Step<C> step = model.decodeStep(token, pos, memory, cache);
      steps++;
      cache = step.cache;
      int next = argmax(step.logits);
      if (next == eosId) {
        break;
      }
      out.add(next);
      token = next;
    }
    return new Result(toArray(out), steps, steps);
  }

  /** {@code numpy.argmax}: the first maximum; a NaN counts as the maximum. */
  static int argmax(float[] logits) {
    int best = 0;
    for (int i = 0; i < logits.length; i++) {
      if (Float.isNaN(logits[i])) {
        return i;
      }
      if (logits[i] > logits[best]) {
        best = i;
      }
    }
    return best;
  }

  /** {@code score / length ** alpha}; length counts EOS, so it is never 0. */
  static double lengthNormalised(double score, int length, double alpha) {
    return score / Math.pow(length, alpha);
  }

  /** Finished hypotheses of the sentence: at most k, best first, stable on equal scores. */
  private static final class Hypotheses {
    final int numBeams;
    final List<Double> scores = new ArrayList<>();
    final List<int[]> items = new ArrayList<>();

    Hypotheses(int numBeams) {
      this.numBeams = numBeams;
    }

    void add(double score, int[] tokens) {
      // Python appends, then sorts by -score (stable): the new item goes after every item whose
      // score is not strictly lower.
      int at = 0;
      while (at < scores.size() && !(scores.get(at) < score)) {
        at++;
      }
      scores.add(at, score);
      items.add(at, tokens);
      while (scores.size() > numBeams) {
        scores.remove(scores.size() - 1);
        items.remove(items.size() - 1);
      }
    }

    boolean isDone(double bestRunning, int length, SearchConfig config) {
      if (scores.size() < numBeams) {
        return false;
      }
      if (config.earlyStopping) {
        return true;
      }
      // Stop once the best running beam, normalised at its current length, cannot beat the
      // worst kept finished hypothesis.
      double bound = lengthNormalised(bestRunning, length, config.lengthPenalty);
      return scores.get(scores.size() - 1) >= bound;
    }
  }

  private static <S, C> Result beamSearch(
      Seq2SeqModel<S, C> model, S memory, int bosId, int eosId, SearchConfig config) {
    int k = config.numBeams;
    List<C> caches = new ArrayList<>();
    C start = model.initCache();
    int[] tokens = new int[k];
    double[] beamScores = new double[k];
    int[][] prefixes = new int[k][];
    for (int j = 0; j < k; j++) {
      caches.add(start);
      tokens[j] = bosId;
      // Only the first beam is live at the start: the others are copies of it.
      beamScores[j] = j == 0 ? 0.0 : -1e9;
      prefixes[j] = new int[0];
    }
    Hypotheses finished = new Hypotheses(k);
    boolean done = false;
    int steps = 0;
    int calls = 0;

    for (int pos = 0; pos < config.maxLength; pos++) {
      // One decoder call per row; rows with the same cache object and token share the call.
      List<Seq2SeqModel.Step<C>> results = new ArrayList<>(k);
      for (int j = 0; j < k; j++) {
        Seq2SeqModel.Step<C> same = null;
        for (int i = 0; i < j; i++) {
          if (caches.get(i) == caches.get(j) && tokens[i] == tokens[j]) {
            same = results.get(i);
            break;
          }
        }
        if (same == null) {
          same = model.decodeStep(tokens[j], pos, memory, caches.get(j));
          calls++;
        }
        results.add(same);
      }
      steps++;
      int vocab = results.get(0).logits.length;
      double[] scores = new double[k * vocab];
      for (int j = 0; j < k; j++) {
        if (results.get(j).logits.length != vocab) {
          throw new IllegalStateException(
              "row " + j + " has " + results.get(j).logits.length + " logits, row 0 has " + vocab);
        }
        double[] logp = logSoftmax(results.get(j).logits);
        for (int t = 0; t < vocab; t++) {
          scores[j * vocab + t] = logp[t] + beamScores[j];
        }
      }
      int[] top = topStable(scores, 2 * k);

      int[] nextRows = new int[k];
      int[] nextTokens = new int[k];
      double[] nextScores = new double[k];
      int[][] nextPrefixes = new int[k][];
      Arrays.fill(nextTokens, eosId);
      Arrays.fill(nextScores, -1e9);
      for (int j = 0; j < k; j++) {
        nextPrefixes[j] = new int[0];
      }
      int length = pos + 1; // generated tokens including the one chosen now
      int filled = 0;
      for (int flat : top) {
        int srcRow = flat / vocab;
        int token = flat % vocab;
        double score = scores[flat];
        if (token == eosId) {
          finished.add(lengthNormalised(score, length, config.lengthPenalty), prefixes[srcRow]);
          continue;
        }
        nextRows[filled] = srcRow;
        nextTokens[filled] = token;
        nextScores[filled] = score;
        int[] prefix = Arrays.copyOf(prefixes[srcRow], prefixes[srcRow].length + 1);
        prefix[prefix.length - 1] = token;
        nextPrefixes[filled] = prefix;
        filled++;
        if (filled == k) {
          break;
        }
      }
      done = finished.isDone(nextScores[0], length, config);
      if (done) {
        break;
      }
      List<C> nextCaches = new ArrayList<>(k);
      for (int j = 0; j < k; j++) {
        nextCaches.add(results.get(nextRows[j]).cache); // the cache rule: take rows by source
      }
      caches = nextCaches;
      tokens = nextTokens;
      beamScores = nextScores;
      prefixes = nextPrefixes;
    }

    if (!done) { // ran out of length: running beams compete with finished ones
      for (int j = 0; j < k; j++) {
        finished.add(
            lengthNormalised(beamScores[j], prefixes[j].length, config.lengthPenalty),
            prefixes[j]);
      }
    }
    return new Result(finished.items.get(0), steps, calls);
  }

  /** The {@code n} best flat indices, ordered as {@code numpy.argsort(-scores, kind="stable")}. */
  static int[] topStable(double[] scores, int n) {
    n = Math.min(n, scores.length);
    int[] best = new int[n];
    int size = 0;
    for (int i = 0; i < scores.length; i++) {
      double s = scores[i];
      if (size == n && !better(s, scores[best[size - 1]])) {
        continue; // not strictly better than the current last: later indices lose ties
      }
      int at = size == n ? n - 1 : size;
      while (at > 0 && better(s, scores[best[at - 1]])) {
        best[at] = best[at - 1];
        at--;
      }
      best[at] = i;
      if (size < n) {
        size++;
      }
    }
    return best;
  }

  /** Strictly ahead in numpy's order of -score: larger first, NaN last. */
  private static boolean better(double a, double b) {
    if (Double.isNaN(a)) {
      return false;
    }
    return Double.isNaN(b) || a > b;
  }

  /** log-softmax in double, with numpy's summation order for the normaliser. */
  static double[] logSoftmax(float[] logits) {
    int n = logits.length;
    double[] x = new double[n];
    double max = Double.NEGATIVE_INFINITY;
    for (int i = 0; i < n; i++) {
      x[i] = logits[i];
      if (Double.isNaN(x[i])) {
        max = Double.NaN; // numpy's max propagates NaN
      } else if (x[i] > max) {
        max = x[i];
      }
    }
    double[] e = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] -= max;
      e[i] = Math.exp(x[i]);
    }
    double lse = Math.log(pairwiseSum(e, 0, n));
    for (int i = 0; i < n; i++) {
      x[i] -= lse;
    }
    return x;
  }

  /** numpy's {@code pairwise_sum} for float64 (blocks of 128, 8 accumulators). */
  static double pairwiseSum(double[] a, int from, int n) {
    if (n < 8) {
      double res = 0.0;
      for (int i = 0; i < n; i++) {
        res += a[from + i];
      }
      return res;
    } else if (n <= 128) {
      double[] r = new double[8];
      for (int j = 0; j < 8; j++) {
        r[j] = a[from + j];
      }
      int i;
      for (i = 8; i < n - (n % 8); i += 8) {
        for (int j = 0; j < 8; j++) {
          r[j] += a[from + i + j];
        }
      }
      double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
      for (; i < n; i++) {
        res += a[from + i];
      }
      return res;
    } else {
      int n2 = n / 2;
      n2 -= n2 % 8;
      return pairwiseSum(a, from, n2) + pairwiseSum(a, from + n2, n - n2);
    }
  }

  private static int[] toArray(List<Integer> list) {
    int[] out = new int[list.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = list.get(i);
    }
    return out;
  }
}
