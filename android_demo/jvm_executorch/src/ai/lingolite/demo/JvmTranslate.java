package ai.lingolite.demo;

import ai.lingolite.core.ArtifactException;
import ai.lingolite.core.LingoliteArtifact;
import ai.lingolite.core.SearchConfig;
import ai.lingolite.core.Translator;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The app's translation path on a desktop JVM: {@link LingoliteArtifact#open} (manifest, hashes,
 * signatures, vocabulary), {@link ExecuTorchModel#open} and {@link ExecuTorchModel#translator}
 * exactly as {@link MainActivity} calls them, with the JVM stand-in of executorch-android
 * (jvm_executorch/) running the real {@code .pte}. Not part of the app.
 *
 * <pre>
 * java -Dexecutorch.bridge="python -m tests.executorch_bridge" ai.lingolite.demo.JvmTranslate \
 *     FOLDER TARGET_LANG BEAMS SOURCES.txt OUT.tsv
 * </pre>
 *
 * <p>One source per line in; per line out: output ids, source ids, encode ms, decode ms, steps and
 * the translation, tab-separated. Beams 1 is the app's greedy choice; more is its beam search
 * (length penalty 1.0).
 */
public final class JvmTranslate {
  private JvmTranslate() {}

  public static void main(String[] args) throws IOException, ArtifactException {
    if (args.length != 5) {
      System.err.println("usage: JvmTranslate FOLDER TARGET_LANG BEAMS SOURCES.txt OUT.tsv");
      System.exit(2);
    }
    Path folder = Paths.get(args[0]);
    String target = args[1];
    int beams = Integer.parseInt(args[2]);
    List<String> sources = Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8);
    LingoliteArtifact artifact = LingoliteArtifact.open(folder);
    List<String> lines = new ArrayList<>();
    try (ExecuTorchModel model = ExecuTorchModel.open(artifact)) {
      Translator<ExecuTorchModel.Memory, ExecuTorchModel.Cache> translator =
          model.translator(artifact);
      int maxLength = artifact.program.maxTgtLen;
      SearchConfig config =
          beams == 1 ? SearchConfig.greedy(maxLength) : SearchConfig.beam(maxLength, beams, 1.0);
      for (String source : sources) {
        Translator.Translation t = translator.translate(source, target, config);
        lines.add(
            String.format(
                Locale.US, "%s\t%s\t%.3f\t%.3f\t%d\t%s", join(t.tokens), join(t.sourceIds),
                t.encodeMs, t.decodeMs, t.steps, t.text));
      }
    }
    Files.write(Paths.get(args[4]), lines, StandardCharsets.UTF_8);
  }

  private static String join(int[] ids) {
    StringBuilder out = new StringBuilder();
    for (int id : ids) {
      out.append(out.length() == 0 ? "" : " ").append(id);
    }
    return out.toString();
  }
}
