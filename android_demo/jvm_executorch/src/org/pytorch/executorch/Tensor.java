package org.pytorch.executorch;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * JVM stand-in for executorch-android's {@code Tensor}: the same public factories and accessors the
 * app uses ({@code fromBlob(long[]|int[]|float[]|byte[], long[])}, {@code fromBlobUnsigned},
 * {@code shape()}, {@code getDataAsFloatArray()}), with the real class's behaviour: array data is
 * copied at construction, a data length that disagrees with the shape is an {@link
 * IllegalArgumentException}, and asking a non-float tensor for floats is an {@link
 * IllegalStateException}. Data is held as little-endian bytes with an ExecuTorch ScalarType code,
 * the form in which {@link Module} hands it to the ExecuTorch runtime.
 */
public final class Tensor {
  // ExecuTorch ScalarType codes (runtime/core/portable_type/scalar_type.h).
  static final int UINT8 = 0;
  static final int INT8 = 1;
  static final int INT32 = 3;
  static final int INT64 = 4;
  static final int FLOAT = 6;
  static final int BOOL = 11;

  private final int dtype;
  private final long[] shape;
  private final byte[] data;

  Tensor(int dtype, long[] shape, byte[] data) {
    long numel = numel(shape);
    int width = elementSize(dtype);
    if (numel * width != data.length) {
      throw new IllegalArgumentException(
          "Inconsistent data capacity:" + data.length / width + " and shape number elements:"
              + numel + " shape:" + Arrays.toString(shape));
    }
    this.dtype = dtype;
    this.shape = shape.clone();
    this.data = data;
  }

  static int elementSize(int dtype) {
    switch (dtype) {
      case UINT8:
      case INT8:
      case BOOL:
        return 1;
      case INT32:
      case FLOAT:
        return 4;
      case INT64:
        return 8;
      default:
        throw new IllegalArgumentException("unsupported ExecuTorch dtype code " + dtype);
    }
  }

  private static long numel(long[] shape) {
    long n = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " is negative");
      }
      n *= d;
    }
    return n;
  }

  private static ByteBuffer buffer(int elements, int width) {
    return ByteBuffer.allocate(elements * width).order(ByteOrder.LITTLE_ENDIAN);
  }

  public static Tensor fromBlob(long[] data, long[] shape) {
    ByteBuffer b = buffer(data.length, 8);
    b.asLongBuffer().put(data);
    return new Tensor(INT64, shape, b.array());
  }

  public static Tensor fromBlob(int[] data, long[] shape) {
    ByteBuffer b = buffer(data.length, 4);
    b.asIntBuffer().put(data);
    return new Tensor(INT32, shape, b.array());
  }

  public static Tensor fromBlob(float[] data, long[] shape) {
    ByteBuffer b = buffer(data.length, 4);
    b.asFloatBuffer().put(data);
    return new Tensor(FLOAT, shape, b.array());
  }

  public static Tensor fromBlob(byte[] data, long[] shape) {
    return new Tensor(INT8, shape, data.clone());
  }

  public static Tensor fromBlobUnsigned(byte[] data, long[] shape) {
    return new Tensor(UINT8, shape, data.clone());
  }

  public long[] shape() {
    return shape.clone();
  }

  public float[] getDataAsFloatArray() {
    if (dtype != FLOAT) {
      throw new IllegalStateException(
          "Tensor of type " + getClass().getSimpleName() + "(dtype code " + dtype
              + ") cannot return data as float array.");
    }
    float[] out = new float[data.length / 4];
    ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
    return out;
  }

  int dtype() {
    return dtype;
  }

  long[] shapeRef() {
    return shape;
  }

  byte[] bytes() {
    return data;
  }
}
