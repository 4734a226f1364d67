package ai.lingolite.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** An artifact folder (or a file in it) that must not be used; lists every problem found. */
public final class ArtifactException extends Exception {
  private static final long serialVersionUID = 1L;
  private final List<String> problems;

  public ArtifactException(String prefix, List<String> problems) {
    super(prefix + String.join("; ", problems));
    this.problems = Collections.unmodifiableList(new ArrayList<>(problems));
  }

  public ArtifactException(String message) {
    super(message);
    this.problems = Collections.singletonList(message);
  }

  public ArtifactException(String message, Throwable cause) {
    super(message, cause);
    this.problems = Collections.singletonList(message);
  }

  /** The individual problems (one entry when the folder was refused for a single reason). */
  public List<String> problems() {
    return problems;
  }
}
