package ai.lingolite.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.Map;
import org.junit.Test;

/** {@link Translator}: source convention, length cut, out-of-vocabulary ids, timings. */
public class TranslatorTest {

  /** Emits a fixed token sequence then EOS; records the source it was given. */
  static final class ScriptedModel implements Seq2SeqModel<int[], Integer> {
    final int[] script;
    int[] source;

    ScriptedModel(int... script) {
      this.script = script;
    }

    @Override
    public int maxTgtLen() {
      return 16;
    }

    @Override
    public int[] encode(int[] srcIds) {
      source = srcIds.clone();
      return source;
    }

    @Override
    public Integer initCache() {
      return 0;
    }

    @Override
    public Step<Integer> decodeStep(int token, int pos, int[] memory, Integer cache) {
      float[] logits = new float[20000];
      logits[pos < script.length ? script[pos] : 2] = 10f;
      return new Step<>(logits, cache + 1);
    }
  }

  private static SentencePieceTokenizer tokenizer() throws Exception {
    Map<String, Object> golden = Goldens.read("tokenizer_golden.json");
    return SentencePieceTokenizer.load(
        Goldens.dir().resolve(Json.asString(golden.get("vocab"), "vocab")));
  }

  @Test
  public void translatesWithTagSourceCutAndUnknownIds() throws Exception {
    SentencePieceTokenizer tok = tokenizer();
    String lang = tok.langIds().keySet().iterator().next();
    int[] hello = tok.encode("A man rides a bike.");
    int beyond = tok.vocabSize() + 5; // only an untrained export's larger output layer emits it
    ScriptedModel model = new ScriptedModel(hello[0], hello[1], beyond);
    Translator<int[], Integer> t = new Translator<>(tok, model, 4, tok.bosId(), tok.eosId());
    Translator.Translation out = t.translate("A man rides a bike.", lang, SearchConfig.greedy(16));
    assertArrayEquals(new int[] {tok.langId(lang), hello[0], hello[1], tok.eosId()}, model.source);
    assertArrayEquals(new int[] {hello[0], hello[1], beyond}, out.tokens);
    String expected = tok.decode(new int[] {hello[0], hello[1], tok.unkId()});
    assertEquals(expected, out.text);
    assertEquals(4, out.steps);
    assertTrue(out.encodeMs >= 0 && out.decodeMs >= 0 && out.msPerStep() >= 0);
  }
}
