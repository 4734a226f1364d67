package org.pytorch.executorch;

/** Stub of executorch-android EValue (EValue.java: from(Tensor), toTensor()). */
public class EValue {
  private EValue() {}

  public static EValue from(Tensor tensor) {
    throw new UnsupportedOperationException("stub");
  }

  public Tensor toTensor() {
    throw new UnsupportedOperationException("stub");
  }
}
