package ai.lingolite.core;

import java.util.ArrayList;
import java.util.List;

/** Decoding options, as {@code SearchConfig} in {@code lingolite/search.py} (no sampling here). */
public final class SearchConfig {
  public final int maxLength;
  public final int numBeams;
  public final double lengthPenalty;
  public final boolean earlyStopping;

  /** {@code numBeams > 1} selects beam search. */
  public SearchConfig(int maxLength, int numBeams, double lengthPenalty, boolean earlyStopping) {
    this.maxLength = maxLength;
    this.numBeams = numBeams;
    this.lengthPenalty = lengthPenalty;
    this.earlyStopping = earlyStopping;
  }

  public static SearchConfig greedy(int maxLength) {
    return new SearchConfig(maxLength, 1, 1.0, false);
  }

  public static SearchConfig beam(int maxLength, int numBeams, double lengthPenalty) {
    return new SearchConfig(maxLength, numBeams, lengthPenalty, false);
  }

  /** Throws {@link IllegalArgumentException} naming every invalid option and its value. */
  public void validate(int maxTgtLen) {
    List<String> errors = new ArrayList<>();
    if (maxLength < 1 || maxLength > maxTgtLen) {
      errors.add("max_length must be in [1, " + maxTgtLen + "], got " + maxLength);
    }
    if (numBeams < 1) {
      errors.add("num_beams must be >= 1, got " + numBeams);
    }
    if (Double.isNaN(lengthPenalty) || Double.isInfinite(lengthPenalty)) {
      errors.add("length_penalty must be finite, got " + lengthPenalty);
    }
    if (!errors.isEmpty()) {
      throw new IllegalArgumentException("invalid search config: " + String.join("; ", errors));
    }
  }

  @Override
  public String toString() {
    return "SearchConfig(max_length=" + maxLength + ", num_beams=" + numBeams
        + ", length_penalty=" + lengthPenalty + ", early_stopping=" + earlyStopping + ")";
  }
}
