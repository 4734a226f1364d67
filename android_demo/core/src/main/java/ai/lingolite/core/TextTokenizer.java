package ai.lingolite.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * What the translator needs from a tokenizer: LingoLite's {@link SentencePieceTokenizer} or an
 * imported Marian (OPUS-MT) model's {@link MarianTokenizer}, read from the {@code vocab.json}
 * that {@code export/vocab.py} writes (its {@code "type"} names the kind).
 */
public interface TextTokenizer {
  int vocabSize();

  int unkId();

  /** The decoder's first input (Marian: pad); the manifest's {@code bos_id} must agree. */
  int bosId();

  int eosId();

  int padId();

  /** Target language -> id of its tag ({@code <2xx>} or {@code >>xx<<}); may be empty. */
  Map<String, Integer> langIds();

  /** The tag id of target {@code lang}; {@link IllegalArgumentException} if there is none. */
  int langId(String lang);

  /** The source ids for translating {@code text} into {@code tgtLang}, at most {@code maxLen}. */
  int[] encodeSource(String text, String tgtLang, int maxLen);

  default int[] encodeSource(String text, String tgtLang) {
    return encodeSource(text, tgtLang, Integer.MAX_VALUE);
  }

  /** The text of output ids, as the Python tokenizer's {@code decode}. */
  String decode(int[] ids);

  /** Builds the tokenizer a parsed {@code vocab.json} describes (by its {@code "type"}). */
  static TextTokenizer fromJson(Map<String, Object> vocab) {
    if (MarianTokenizer.VOCAB_TYPE.equals(vocab.get("type"))) {
      return MarianTokenizer.fromJson(vocab);
    }
    return SentencePieceTokenizer.fromJson(vocab); // refuses any other type, naming it
  }

  /** Reads {@code vocab.json}; any problem is an {@link ArtifactException} naming the file. */
  static TextTokenizer load(Path vocabFile) throws ArtifactException {
    try {
      String text = new String(Files.readAllBytes(vocabFile), StandardCharsets.UTF_8);
      return fromJson(Json.asObject(Json.parse(text), vocabFile.toString()));
    } catch (IOException exc) {
      throw new ArtifactException("cannot read " + vocabFile + ": " + exc.getMessage(), exc);
    } catch (IllegalArgumentException exc) {
      throw new ArtifactException("invalid vocabulary " + vocabFile + ": " + exc.getMessage(), exc);
    }
  }
}
