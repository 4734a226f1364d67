package ai.lingolite.core;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.Before;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/**
 * Manifest checks on a copy of an artifact folder written by Python's {@code
 * runtime.manifest.write_manifest}: the real schema, then broken on purpose.
 */
public class ManifestTest {
  @Rule public TemporaryFolder tmp = new TemporaryFolder();
  private Path folder;

  @Before
  public void copyArtifact() throws IOException {
    Path source = Goldens.dir().resolve("artifact");
    folder = tmp.newFolder("artifact").toPath();
    try (Stream<Path> files = Files.list(source)) {
      for (Path f : (Iterable<Path>) files::iterator) {
        Files.copy(f, folder.resolve(f.getFileName()));
      }
    }
  }

  private String manifestText() throws IOException {
    return new String(Files.readAllBytes(folder.resolve("manifest.json")), StandardCharsets.UTF_8);
  }

  private void writeManifest(String text) throws IOException {
    Files.write(folder.resolve("manifest.json"), text.getBytes(StandardCharsets.UTF_8));
  }

  private void editManifest(String from, String to) throws IOException {
    String text = manifestText();
    assertTrue("manifest lacks " + from, text.contains(from));
    int at = text.indexOf(from); // the first occurrence: top-level keys sort before "variants"
    writeManifest(text.substring(0, at) + to + text.substring(at + from.length()));
  }

  private ArtifactException refused() {
    try {
      Manifest.load(folder, true);
    } catch (ArtifactException exc) {
      return exc;
    }
    throw new AssertionError("the folder was accepted");
  }

  private static void assertMentions(ArtifactException exc, String... fragments) {
    for (String f : fragments) {
      assertTrue("'" + f + "' not in: " + exc.getMessage(), exc.getMessage().contains(f));
    }
  }

  @Test
  public void pythonWrittenFolderLoads() throws Exception {
    Manifest m = Manifest.load(folder, true);
    Map<String, Integer> ids = m.langIds();
    assertEquals(m.languages(), new java.util.ArrayList<>(ids.keySet()));
    assertEquals(2, m.specialId("eos"));
    assertEquals(folder.toRealPath().resolve("vocab.json"), m.vocabFile());
    Manifest.Variant v = m.variantFor("executorch");
    assertEquals("8da8w", v.precision);
    assertTrue(Files.isRegularFile(v.files.get("program")));
    assertEquals(128, m.modelInt("max_src_len"));
    SentencePieceTokenizer tok = SentencePieceTokenizer.load(m.vocabFile());
    for (Map.Entry<String, Integer> e : ids.entrySet()) {
      assertEquals("tag id of " + e.getKey(), e.getValue().intValue(), tok.langId(e.getKey()));
    }
  }

  /** The manifest with its {@code directions} set to {@code listed} (a JSON array). */
  private void setDirections(String listed) throws IOException {
    String text = manifestText();
    String entry = "\"directions\": " + listed;
    writeManifest(text.contains("\"directions\"")
        ? text.replaceFirst("\"directions\": \\[[^\\]]*\\]", entry)
        : text.replaceFirst("\"format_version\": 1", entry + ", \"format_version\": 1"));
  }

  @Test
  public void pickersOfferTrainedDirectionsOnly() throws Exception {
    setDirections("[\"en-de\"]");
    Manifest single = Manifest.load(folder, true); // one pair, as an imported OPUS-MT en-de
    assertEquals(Arrays.asList("en-de"), single.directions());
    assertEquals(Arrays.asList("en"), single.sourceLanguages());
    assertEquals(Arrays.asList("de"), single.targetLanguages("en"));
    assertTrue(single.targetLanguages("de").isEmpty());
    setDirections("[\"en-de\", \"de-en\", \"en-fr\", \"fr-en\"]");
    Manifest four = Manifest.load(folder, true);
    assertEquals(Arrays.asList("en", "de", "fr"), four.sourceLanguages());
    assertEquals(Arrays.asList("de", "fr"), four.targetLanguages("en"));
    assertEquals(Arrays.asList("en"), four.targetLanguages("fr"));
  }

  @Test
  public void untrainedDirectionIsRefusedNamingTheTrainedOnes() throws Exception {
    Manifest all = Manifest.load(folder, true);
    if (all.data().get("directions") == null) { // an older manifest: every pair is served
      assertTrue(all.directions().contains("fr-de"));
      editManifest("\"format_version\": 1", "\"directions\": [\"en-de\", \"de-en\", "
          + "\"en-fr\", \"fr-en\"], \"format_version\": 1");
    }
    Manifest m = Manifest.load(folder, true);
    m.requireDirection("fr", "en");
    try {
      m.requireDirection("fr", "de");
      fail("fr-de must be refused");
    } catch (IllegalArgumentException exc) {
      assertTrue(exc.getMessage(), exc.getMessage().contains("direction fr-de was not trained"));
      assertTrue(exc.getMessage(), exc.getMessage().contains(String.join(", ", m.directions())));
    }
  }

  @Test
  public void negativeAndDuplicateTokenIdsAreRefused() throws Exception {
    // tokenizer keys are sorted: "eos_id" is followed by "lang_ids" only inside "tokenizer".
    String text = manifestText();
    assertTrue(text.matches("(?s).*\"eos_id\": 2,\\s+\"lang_ids\".*"));
    writeManifest(text.replaceFirst("\"eos_id\": 2,(\\s+\"lang_ids\")", "\"eos_id\": -5,$1"));
    assertMentions(refused(), "tokenizer.eos_id must be >= 0, got -5");
    writeManifest(text.replaceFirst("\"eos_id\": 2,(\\s+\"lang_ids\")", "\"eos_id\": 1,$1"));
    assertMentions(refused(), "special and language-tag ids must be distinct");
  }

  @Test
  public void missingFolderAndManifest() throws Exception {
    try {
      Manifest.load(folder.resolve("nope"), true);
      fail();
    } catch (ArtifactException exc) {
      assertMentions(exc, "does not exist or is not a folder");
    }
    Files.delete(folder.resolve("manifest.json"));
    assertMentions(refused(), "manifest.json is missing");
  }

  @Test
  public void invalidJsonIsRefused() throws Exception {
    writeManifest("{\"format_version\": 1,");
    assertMentions(refused(), "is not valid", "invalid JSON");
  }

  @Test
  public void wrongFormatVersionIsRefused() throws Exception {
    editManifest("\"format_version\": 1", "\"format_version\": 2");
    assertMentions(refused(), "format_version long 2 is not supported", "reads format_version 1");
    editManifest("\"format_version\": 2", "\"format_version\": \"1\"");
    assertMentions(refused(), "format_version string \"1\" is not supported");
  }

  @Test
  public void missingFileIsRefused() throws Exception {
    Files.delete(folder.resolve("lingolite_8da8w.pte"));
    assertMentions(refused(), "file 'lingolite_8da8w.pte' is missing");
  }

  @Test
  public void hashMismatchIsRefusedAndOnlyWhenVerifying() throws Exception {
    Path pte = folder.resolve("lingolite_8da8w.pte");
    byte[] bytes = Files.readAllBytes(pte);
    bytes[100] ^= 1; // same size, different content
    Files.write(pte, bytes);
    assertMentions(refused(), "file 'lingolite_8da8w.pte' does not match its sha256");
    Manifest.load(folder, false); // sizes still checked, hashes skipped
  }

  @Test
  public void sizeMismatchIsRefused() throws Exception {
    Files.write(folder.resolve("vocab.json"), new byte[] {'{', '}'});
    assertMentions(refused(), "file 'vocab.json' has 2 bytes, the manifest says");
  }

  @Test
  public void everyProblemIsReportedAtOnce() throws Exception {
    Files.delete(folder.resolve("spm.model"));
    Path pte = folder.resolve("lingolite_8da8w.pte");
    byte[] bytes = Files.readAllBytes(pte);
    bytes[0] ^= 1;
    Files.write(pte, bytes);
    ArtifactException exc = refused();
    assertMentions(exc, "'spm.model' is missing", "'lingolite_8da8w.pte' does not match");
    assertEquals(exc.problems().toString(), 2, exc.problems().size());
  }

  @Test
  public void pathsEscapingTheFolderAreRefused() throws Exception {
    Path outside = tmp.newFile("outside.pte").toPath();
    Files.write(outside, new byte[] {1, 2, 3});
    String sha = Manifest.sha256(outside);
    String entries = "\"../outside.pte\": {\"bytes\": 3, \"sha256\": \"" + sha + "\"}, "
        + "\"" + outside.toAbsolutePath() + "\": {\"bytes\": 3, \"sha256\": \"" + sha + "\"}, "
        + "\"link.pte\": {\"bytes\": 3, \"sha256\": \"" + sha + "\"}, ";
    Files.createSymbolicLink(folder.resolve("link.pte"), outside);
    editManifest("\"files\": {", "\"files\": {" + entries);
    ArtifactException exc = refused();
    assertMentions(exc, "'../outside.pte' must not contain '..'", "must be a path relative to",
        "'link.pte' resolves to", "outside its folder");
    assertEquals(exc.problems().toString(), 3, exc.problems().size());
  }

  @Test
  public void usedFileWithoutHashIsRefused() throws Exception {
    editManifest("\"program\": \"lingolite_8da8w.pte\"", "\"program\": \"other.pte\"");
    assertMentions(refused(), "file 'other.pte' is used but has no sha256 entry");
  }

  @Test
  public void schemaProblemsAreListed() throws Exception {
    editManifest("\"backend\": \"executorch\"", "\"backend\": \"tflite\"");
    editManifest("\"config\": \"tokenizer.json\"", "\"config\": 5");
    editManifest("\"lang_ids\": {", "\"lang_ids\": [], \"old_lang_ids\": {");
    ArtifactException exc = refused();
    assertMentions(exc, "backend string \"tflite\" not in", "tokenizer.config must name a file",
        "tokenizer.lang_ids must be a non-empty object");
    assertEquals(exc.problems().toString(), 3, exc.problems().size());
  }

  @Test
  public void vocabularyMustBeListedAndVerified() throws Exception {
    editManifest("\"vocab\": \"vocab.json\"", "\"vocab\": \"vocab2.json\"");
    Manifest m = Manifest.load(folder, true);
    try {
      m.vocabFile();
      fail("unverified vocabulary accepted");
    } catch (ArtifactException exc) {
      assertMentions(exc, "no verified vocabulary file 'vocab2.json'", "export.vocab");
    }
  }

  @Test
  public void missingBackendNamesWhatExists() throws Exception {
    try {
      Manifest.load(folder, false).variantFor("onnxruntime");
      fail();
    } catch (ArtifactException exc) {
      assertMentions(exc, "has no onnxruntime program; it has [executorch/8da8w]");
    }
  }

  // ------------------------------------------------------------------ program signatures

  @Test
  public void boolMaskProgramIsRefusedWithTheReason() throws Exception {
    Manifest.Variant v = Manifest.load(folder, false).variantFor("executorch");
    try {
      ProgramSpec.fromVariant(v);
      fail("a bool src_mask cannot be fed from Java and must be refused up front");
    } catch (ArtifactException exc) {
      assertMentions(exc, "src_mask is bool", "Tensor.fromBlob has no boolean overload", "int64");
    }
  }

  @Test
  public void int64MaskProgramIsAccepted() throws Exception {
    String text = manifestText().replace("\"dtype\": \"bool\"", "\"dtype\": \"int64\"");
    writeManifest(text);
    ProgramSpec spec = ProgramSpec.fromVariant(Manifest.load(folder, false).variantFor("executorch"));
    assertEquals(128, spec.maxSrcLen);
    assertEquals(128, spec.maxTgtLen);
    assertEquals("int64", spec.maskDtype);
    assertArrayEquals(new long[] {3, 1, 2, 128, 48}, spec.crossShape);
    assertArrayEquals(new long[] {3, 1, 2, 128, 48}, spec.selfShape);
    assertTrue(spec.vocabSize > 100);
  }

  @Test
  public void artifactOpensWhenProgramVocabularyAndConfigAgree() throws Exception {
    writeManifest(manifestText().replace("\"dtype\": \"bool\"", "\"dtype\": \"int64\""));
    LingoliteArtifact a = LingoliteArtifact.open(folder);
    assertEquals(a.manifest.languages(), a.languages());
    assertEquals(folder.resolve("lingolite_8da8w.pte"), a.programFile);
    assertEquals(a.program.vocabSize, a.tokenizer.vocabSize());
  }

  @Test
  public void artifactDisagreementsAreListed() throws Exception {
    String text = manifestText().replace("\"dtype\": \"bool\"", "\"dtype\": \"int64\"");
    writeManifest(text.replace("\"max_tgt_len\": 128", "\"max_tgt_len\": 64"));
    Manifest.load(folder, true); // still a valid manifest
    try {
      LingoliteArtifact.open(folder);
      fail("a config that disagrees with the program was accepted");
    } catch (ArtifactException exc) {
      assertMentions(exc, "model.max_tgt_len is 64 in the manifest but 128");
    }
  }

  @Test
  public void artifactWithBoolMaskIsRefusedBeforeLoadingAnything() throws Exception {
    try {
      LingoliteArtifact.open(folder);
      fail();
    } catch (ArtifactException exc) {
      assertMentions(exc, "src_mask is bool");
    }
  }

  @Test
  public void inconsistentSignaturesAreListed() throws Exception {
    String text = manifestText().replace("\"dtype\": \"bool\"", "\"dtype\": \"int64\"");
    text = text.replaceAll("\"dtype\": \"int64\",(\\s+)\"name\": \"pos\"",
        "\"dtype\": \"int32\",$1\"name\": \"pos\"");
    writeManifest(text);
    List<String> problems;
    try {
      ProgramSpec.fromVariant(Manifest.load(folder, false).variantFor("executorch"));
      fail("int32 pos accepted");
      return;
    } catch (ArtifactException exc) {
      problems = exc.problems();
    }
    assertTrue(problems.toString(), problems.toString().contains("pos must be int64, got int32"));
  }
}
