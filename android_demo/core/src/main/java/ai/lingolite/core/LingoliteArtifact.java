package ai.lingolite.core;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Everything the app needs from an artifact folder, checked for consistency before the native
 * program is touched: the verified manifest, the ExecuTorch program's I/O ({@link ProgramSpec}),
 * and the Java tokenizer, which must agree with each other and with the model config.
 */
public final class LingoliteArtifact {
  public final Manifest manifest;
  public final Manifest.Variant variant;
  public final ProgramSpec program;
  public final TextTokenizer tokenizer;
  /** The decoder's first input and the end token, from the manifest ({@code tokenizer.bos_id},
   * {@code eos_id}; Marian starts from pad), checked against the tokenizer. */
  public final int bosId;

  public final int eosId;
  /** The {@code .pte} file, verified and inside the folder. */
  public final Path programFile;

  private LingoliteArtifact(
      Manifest manifest, Manifest.Variant variant, ProgramSpec program,
      TextTokenizer tokenizer, Path programFile, int bosId, int eosId) {
    this.manifest = manifest;
    this.variant = variant;
    this.program = program;
    this.tokenizer = tokenizer;
    this.programFile = programFile;
    this.bosId = bosId;
    this.eosId = eosId;
  }

  /** Opens {@code folder} (hashing every file); one exception lists every problem. */
  public static LingoliteArtifact open(Path folder) throws ArtifactException {
    Manifest manifest = Manifest.load(folder, true);
    Manifest.Variant variant = manifest.variantFor("executorch");
    ProgramSpec program = ProgramSpec.fromVariant(variant);
    TextTokenizer tokenizer = TextTokenizer.load(manifest.vocabFile());
    List<String> problems = new ArrayList<>();
    Path programFile = variant.files.get("program");
    if (programFile == null) { // every listed file was verified (inside, size, sha256) by load
      problems.add("variant '" + variant.name + "' has no 'program' file, only "
          + variant.files.keySet());
    }
    expect(problems, "model.max_src_len", manifest.modelInt("max_src_len"), program.maxSrcLen);
    expect(problems, "model.max_tgt_len", manifest.modelInt("max_tgt_len"), program.maxTgtLen);
    expect(problems, "model.vocab_size", manifest.modelInt("vocab_size"), program.vocabSize);
    // An untrained export keeps the preset's larger output layer (export/common.py); ids past
    // the tokenizer decode as <unk> (Translator), as in runtime/translator.py.
    if (tokenizer.vocabSize() > program.vocabSize) {
      problems.add("the vocabulary has " + tokenizer.vocabSize() + " pieces but the program only "
          + program.vocabSize + " logits");
    }
    Object listed = Json.asObject(manifest.data().get("tokenizer"), "tokenizer").get("vocab_size");
    if (listed != null && !Long.valueOf(tokenizer.vocabSize()).equals(listed)) {
      problems.add("tokenizer.vocab_size is " + listed + " in the manifest but vocab.json has "
          + tokenizer.vocabSize() + " pieces");
    }
    expect(problems, "model.n_decoder_layers", manifest.modelInt("n_decoder_layers"),
        program.selfShape[0]);
    expect(problems, "model.n_kv_heads", manifest.modelInt("n_kv_heads"), program.selfShape[2]);
    expect(problems, "head_dim", manifest.modelInt("d_model") / manifest.modelInt("n_heads"),
        program.selfShape[4]);
    expect(problems, "eos_id", manifest.specialId("eos"), tokenizer.eosId());
    expect(problems, "bos_id", manifest.specialId("bos"), tokenizer.bosId());
    expect(problems, "pad_id", manifest.specialId("pad"), tokenizer.padId());
    for (Map.Entry<String, Integer> e : manifest.langIds().entrySet()) {
      try {
        expect(problems, "tag id of '" + e.getKey() + "'", e.getValue(),
            tokenizer.langId(e.getKey()));
      } catch (IllegalArgumentException exc) {
        problems.add(exc.getMessage());
      }
    }
    if (!problems.isEmpty()) {
      throw new ArtifactException(
          "artifact folder " + folder + " is inconsistent (manifest, program and vocabulary "
              + "disagree): ", problems);
    }
    return new LingoliteArtifact(manifest, variant, program, tokenizer, programFile,
        manifest.specialId("bos"), manifest.specialId("eos"));
  }

  private static void expect(List<String> problems, String what, long manifest, long actual) {
    if (manifest != actual) {
      problems.add(what + " is " + manifest + " in the manifest but " + actual
          + " in the program/vocabulary");
    }
  }

  /** The tokenizer's languages, in manifest order (the app's pickers offer the trained
   * directions: {@link Manifest#sourceLanguages}, {@link Manifest#targetLanguages}). */
  public List<String> languages() {
    return manifest.languages();
  }
}
