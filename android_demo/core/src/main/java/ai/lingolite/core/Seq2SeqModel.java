package ai.lingolite.core;

/**
 * What a runtime implements so that {@link Search} can drive it: the Java twin of {@code
 * Seq2SeqBackend} in {@code lingolite/search.py}, for one sentence and one row per call (the
 * ExecuTorch program has batch 1; beam search calls it once per beam).
 *
 * <p>The cache rule, as every implementation must honour it:
 *
 * <ol>
 *   <li>{@link #encode} runs once per sentence; its state never changes afterwards.
 *   <li>{@link #initCache} returns the start state (zeros for a KV cache).
 *   <li>Step {@code pos} feeds one token at position {@code pos} (BOS at {@code pos = 0}) with the
 *       cache returned by step {@code pos - 1} of the same hypothesis; it returns the logits for
 *       position {@code pos + 1} and the new cache, which replaces the old one.
 *   <li>{@code decodeStep} must not modify the cache it is given: beam search may hand the same
 *       cache object to several beams (beams that share a prefix), which is how it "reorders" rows.
 *   <li>At most {@link #maxTgtLen()} tokens are fed (positions {@code 0 .. maxTgtLen - 1}).
 * </ol>
 *
 * @param <S> the encoder state ({@code Memory} in Python)
 * @param <C> the decoder cache
 */
public interface Seq2SeqModel<S, C> {
  /** Static length of the decoder's self-attention cache. */
  int maxTgtLen();

  /** Runs the encoder on {@code [<2tgt>] + pieces + [eos]}. */
  S encode(int[] srcIds);

  /** The cache before the first step. */
  C initCache();

  /** Feeds {@code token} at position {@code pos}; returns logits (length V) and the new cache. */
  Step<C> decodeStep(int token, int pos, S memory, C cache);

  /** The result of one decoder step. */
  final class Step<C> {
    public final float[] logits;
    public final C cache;

    public Step(float[] logits, C cache) {
      this.logits = logits;
      this.cache = cache;
    }
  }
}
