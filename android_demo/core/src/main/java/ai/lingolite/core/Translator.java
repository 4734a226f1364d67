package ai.lingolite.core;

/**
 * Text in, text out: tokenizer, model and search together, with the latency the app shows.
 *
 * <p>The source is the tokenizer's {@code encodeSource} ({@code [<2tgt>] + pieces + [eos]}, or
 * Marian's form), cut to {@code maxSrcLen} ids the way {@code encode_source(..., max_len)} cuts
 * it; decoding starts from {@code bosId}, the manifest's (Marian: pad).
 */
public final class Translator<S, C> {
  private final TextTokenizer tokenizer;
  private final Seq2SeqModel<S, C> model;
  private final int maxSrcLen;
  private final int bosId;
  private final int eosId;

  public Translator(
      TextTokenizer tokenizer, Seq2SeqModel<S, C> model, int maxSrcLen, int bosId,
      int eosId) {
    this.tokenizer = tokenizer;
    this.model = model;
    this.maxSrcLen = maxSrcLen;
    this.bosId = bosId;
    this.eosId = eosId;
  }

  /** One translation and its timings. */
  public static final class Translation {
    public final String text;
    public final int[] sourceIds;
    public final int[] tokens;
    public final double encodeMs;
    public final double decodeMs;
    public final int steps;
    public final int modelCalls;

    Translation(
        String text, int[] sourceIds, Search.Result result, double encodeMs, double decodeMs) {
      this.text = text;
      this.sourceIds = sourceIds;
      this.tokens = result.tokens;
      this.encodeMs = encodeMs;
      this.decodeMs = decodeMs;
      this.steps = result.steps;
      this.modelCalls = result.modelCalls;
    }

    /** Decoder time per position fed (for beam search, all beams of that position together). */
    public double msPerStep() {
      return steps == 0 ? 0.0 : decodeMs / steps;
    }
  }

  public Translation translate(String text, String tgtLang, SearchConfig config) {
    config.validate(model.maxTgtLen());
    int[] src = tokenizer.encodeSource(text, tgtLang, maxSrcLen);
    long t0 = System.nanoTime();
    S memory = model.encode(src);
    long t1 = System.nanoTime();
    Search.Result result = Search.decode(model, memory, bosId, eosId, config);
    long t2 = System.nanoTime();
    return new Translation(
        tokenizer.decode(inVocabulary(result.tokens)), src, result, (t1 - t0) / 1e6,
        (t2 - t1) / 1e6);
  }

  /**
   * Ids past the tokenizer's pieces, which only an untrained export emits (its output layer keeps
   * the preset's size), become {@code <unk>}, as in {@code runtime/translator.py}.
   */
  int[] inVocabulary(int[] tokens) {
    int[] out = tokens.clone();
    for (int i = 0; i < out.length; i++) {
      if (out[i] >= tokenizer.vocabSize()) {
        out[i] = tokenizer.unkId();
      }
    }
    return out;
  }
}
