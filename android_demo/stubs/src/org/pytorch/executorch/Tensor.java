package org.pytorch.executorch;

/** Stub of executorch-android Tensor (Tensor.java / Tensor.kt: fromBlob*, shape, getDataAs*). */
public abstract class Tensor {
  private Tensor() {}

  public static Tensor fromBlob(long[] data, long[] shape) {
    throw new UnsupportedOperationException("stub");
  }

  public static Tensor fromBlob(int[] data, long[] shape) {
    throw new UnsupportedOperationException("stub");
  }

  public static Tensor fromBlob(float[] data, long[] shape) {
    throw new UnsupportedOperationException("stub");
  }

  public static Tensor fromBlob(byte[] data, long[] shape) {
    throw new UnsupportedOperationException("stub");
  }

  public static Tensor fromBlobUnsigned(byte[] data, long[] shape) {
    throw new UnsupportedOperationException("stub");
  }

  public long[] shape() {
    throw new UnsupportedOperationException("stub");
  }

  public float[] getDataAsFloatArray() {
    throw new UnsupportedOperationException("stub");
  }
}
