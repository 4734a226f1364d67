package org.pytorch.executorch;

/**
 * JVM stand-in for executorch-android's {@code EValue}, tensor case only ({@code from(Tensor)},
 * {@code toTensor()}), which is all the app passes to and gets from {@link Module#execute}.
 */
public final class EValue {
  private final Tensor tensor;

  private EValue(Tensor tensor) {
    this.tensor = tensor;
  }

  public static EValue from(Tensor tensor) {
    if (tensor == null) {
      throw new NullPointerException("tensor");
    }
    return new EValue(tensor);
  }

  public Tensor toTensor() {
    return tensor;
  }
}
