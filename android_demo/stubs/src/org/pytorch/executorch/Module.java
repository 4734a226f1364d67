package org.pytorch.executorch;

/** Stub of executorch-android Module (Module.java / Module.kt: load, execute, getMethods). */
public class Module {
  public static final int LOAD_MODE_FILE = 0;
  public static final int LOAD_MODE_MMAP = 1;

  private Module() {}

  public static Module load(String modelPath, int loadMode) {
    throw new UnsupportedOperationException("stub");
  }

  public EValue[] execute(String methodName, EValue... inputs) {
    throw new UnsupportedOperationException("stub");
  }

  public String[] getMethods() {
    throw new UnsupportedOperationException("stub");
  }

  public void destroy() {
    throw new UnsupportedOperationException("stub");
  }
}
