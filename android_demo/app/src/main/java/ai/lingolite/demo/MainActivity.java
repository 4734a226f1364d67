package ai.lingolite.demo;

import ai.lingolite.core.ArtifactException;
import ai.lingolite.core.LingoliteArtifact;
import ai.lingolite.core.SearchConfig;
import ai.lingolite.core.Translator;
import android.app.Activity;
import android.os.Bundle;
import android.util.Log;
import android.view.View;
import android.widget.AdapterView;
import android.widget.ArrayAdapter;
import android.widget.Button;
import android.widget.EditText;
import android.widget.Spinner;
import android.widget.TextView;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Reads the artifact folder pushed to {@value #DEFAULT_FOLDER} (or the {@code artifact_dir} intent
 * extra), verifies it, and translates with the ExecuTorch program. Loading and translating run on
 * one background thread; every failure ends as a message on screen, never a crash.
 */
public class MainActivity extends Activity {
  static final String DEFAULT_FOLDER = "/data/local/tmp/lingolite";
  private static final String TAG = "LingoLite";
  private static final List<String> DECODING = Arrays.asList("greedy", "beam search (4 beams)");

  private final ExecutorService worker = Executors.newSingleThreadExecutor();
  private TextView status;
  private EditText source;
  private Spinner sourceLang;
  private Spinner targetLang;
  private Spinner decoding;
  private Button translate;
  private TextView output;
  private TextView latency;

  // Written on the worker thread, read on the UI thread after the load task posts back.
  private volatile LingoliteArtifact artifact;
  private volatile ExecuTorchModel model;
  private volatile Translator<ExecuTorchModel.Memory, ExecuTorchModel.Cache> translator;

  /** Work that may fail; its failure is shown on screen. */
  private interface Task {
    void run() throws Exception;
  }

  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    setContentView(R.layout.activity_main);
    status = view(R.id.status, TextView.class);
    source = view(R.id.source, EditText.class);
    sourceLang = view(R.id.source_lang, Spinner.class);
    targetLang = view(R.id.target_lang, Spinner.class);
    decoding = view(R.id.decoding, Spinner.class);
    translate = view(R.id.translate, Button.class);
    output = view(R.id.output, TextView.class);
    latency = view(R.id.latency, TextView.class);
    decoding.setAdapter(adapter(DECODING));
    translate.setOnClickListener(v -> onTranslate());

    String extra = getIntent().getStringExtra("artifact_dir");
    Path folder = Paths.get(extra != null && !extra.isEmpty() ? extra : DEFAULT_FOLDER);
    status.setText(getString(R.string.loading, folder));
    background(() -> load(folder));
  }

  /**
   * The layout's view {@code id} as a {@code type}. (Not the generic {@code findViewById} of API
   * 26+: the app's sources are type-checked against the API 23 framework jar, see the README.)
   */
  private <T extends View> T view(int id, Class<T> type) {
    return type.cast(findViewById(id));
  }

  private ArrayAdapter<String> adapter(List<String> items) {
    ArrayAdapter<String> a = new ArrayAdapter<>(this, android.R.layout.simple_spinner_item, items);
    a.setDropDownViewResource(android.R.layout.simple_spinner_dropdown_item);
    return a;
  }

  /** Worker thread: verify the folder, load tokenizer and program. */
  private void load(Path folder) throws ArtifactException {
    LingoliteArtifact a = LingoliteArtifact.open(folder); // manifest, hashes, signatures, vocab
    ExecuTorchModel m = ExecuTorchModel.open(a);
    artifact = a;
    model = m;
    translator = m.translator(a);
    runOnUiThread(() -> {
      // The pickers offer the trained directions only (a single-pair model: one of each).
      sourceLang.setAdapter(adapter(a.manifest.sourceLanguages()));
      sourceLang.setOnItemSelectedListener(new AdapterView.OnItemSelectedListener() {
        @Override
        public void onItemSelected(AdapterView<?> parent, View view, int position, long id) {
          String src = String.valueOf(parent.getItemAtPosition(position));
          targetLang.setAdapter(adapter(a.manifest.targetLanguages(src)));
        }

        @Override
        public void onNothingSelected(AdapterView<?> parent) {
          targetLang.setAdapter(adapter(Collections.<String>emptyList()));
        }
      });
      List<String> sources = a.manifest.sourceLanguages();
      targetLang.setAdapter(adapter(
          sources.isEmpty() ? sources : a.manifest.targetLanguages(sources.get(0))));
      status.setText(getString(R.string.ready, folder, a.variant.name, a.tokenizer.vocabSize()));
      translate.setEnabled(true);
    });
  }

  private void onTranslate() {
    String text = source.getText().toString();
    Object src = sourceLang.getSelectedItem();
    Object tgt = targetLang.getSelectedItem();
    if (text.trim().isEmpty()) {
      latency.setText(R.string.empty_source);
      return;
    }
    if (tgt == null || tgt.equals(src)) {
      latency.setText(R.string.same_language);
      return;
    }
    try {
      artifact.manifest.requireDirection(String.valueOf(src), tgt.toString());
    } catch (IllegalArgumentException exc) {
      latency.setText(exc.getMessage());
      return;
    }
    int maxLength = artifact.program.maxTgtLen;
    SearchConfig config =
        decoding.getSelectedItemPosition() == 0
            ? SearchConfig.greedy(maxLength)
            : SearchConfig.beam(maxLength, 4, 1.0);
    translate.setEnabled(false);
    output.setText("");
    latency.setText(R.string.translating);
    background(() -> {
      Translator.Translation t = translator.translate(text, tgt.toString(), config);
      String timing =
          String.format(
              Locale.US,
              "encode %.1f ms · decode %.1f ms for %d steps = %.2f ms/token (%s, %d program "
                  + "calls, %d source ids)",
              t.encodeMs, t.decodeMs, t.steps, t.msPerStep(), DECODING.get(
                  config.numBeams > 1 ? 1 : 0), t.modelCalls, t.sourceIds.length);
      runOnUiThread(() -> {
        output.setText(t.text);
        latency.setText(timing);
        translate.setEnabled(true);
      });
    });
  }

  /** Runs {@code task} on the worker thread; any failure becomes an on-screen message. */
  private void background(Task task) {
    worker.execute(() -> {
      try {
        task.run();
      } catch (Exception | LinkageError | OutOfMemoryError failure) {
        // LinkageError: the ExecuTorch native library is missing for this ABI.
        Log.e(TAG, "failed", failure);
        String message = describe(failure);
        runOnUiThread(() -> {
          status.setText(message);
          latency.setText("");
          translate.setEnabled(translator != null);
        });
      }
    });
  }

  private static String describe(Throwable failure) {
    if (failure instanceof ArtifactException) {
      StringBuilder out = new StringBuilder("Cannot use the artifact folder:");
      for (String problem : ((ArtifactException) failure).problems()) {
        out.append("\n• ").append(problem);
      }
      return out.toString();
    }
    String message = failure.getMessage();
    return failure.getClass().getSimpleName() + (message == null ? "" : ": " + message);
  }

  @Override
  protected void onDestroy() {
    ExecuTorchModel m = model;
    if (m != null) {
      worker.execute(m::close); // queued after any running task: never during an execute
    }
    worker.shutdown();
    super.onDestroy();
  }
}
