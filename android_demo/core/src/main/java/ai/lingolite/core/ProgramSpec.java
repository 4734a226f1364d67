package ai.lingolite.core;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The I/O of an ExecuTorch LingoLite program, checked against the manifest's signatures before
 * anything is loaded, so that a wrong export gives a message instead of a native error:
 *
 * <pre>
 * encode(src_ids int64 (1, S), src_mask (1, S)) -> (cross_k, cross_v float32 (L, 1, h_kv, S, d))
 * decode_step(tokens int64 (1, 1), pos int64 (1,), src_mask (1, S), cross_k, cross_v,
 *             self_k, self_v float32 (L, 1, h_kv, T, d)) -> (logits float32 (1, V), self_k, self_v)
 * </pre>
 *
 * <p>The mask dtype must be one the executorch-android Java {@code Tensor} can be built with:
 * {@link #MASK_DTYPES}. A {@code bool} mask is refused: {@code Tensor.fromBlob} has no boolean
 * overload and ExecuTorch's {@code Method::set_input} requires the exact input dtype (see
 * android_demo/README.md). All shapes must be static.
 */
public final class ProgramSpec {
  /** Mask dtypes the app can feed through executorch-android's {@code Tensor.fromBlob*}. */
  public static final List<String> MASK_DTYPES =
      Collections.unmodifiableList(Arrays.asList("int64", "int32", "uint8", "int8", "float32"));

  public final int maxSrcLen;
  public final int maxTgtLen;
  public final int vocabSize;
  public final String maskDtype;
  public final long[] crossShape;
  public final long[] selfShape;

  private ProgramSpec(
      int maxSrcLen, int maxTgtLen, int vocabSize, String maskDtype, long[] crossShape,
      long[] selfShape) {
    this.maxSrcLen = maxSrcLen;
    this.maxTgtLen = maxTgtLen;
    this.vocabSize = vocabSize;
    this.maskDtype = maskDtype;
    this.crossShape = crossShape;
    this.selfShape = selfShape;
  }

  public static long numel(long[] shape) {
    long n = 1;
    for (long s : shape) {
      n *= s;
    }
    return n;
  }

  /** Reads and checks the signatures of an executorch variant; lists every problem at once. */
  public static ProgramSpec fromVariant(Manifest.Variant variant) throws ArtifactException {
    List<String> problems = new ArrayList<>();
    List<Manifest.TensorSpec> encIn = variant.inputs("encode");
    List<Manifest.TensorSpec> encOut = variant.outputs("encode");
    List<Manifest.TensorSpec> decIn = variant.inputs("decode_step");
    List<Manifest.TensorSpec> decOut = variant.outputs("decode_step");
    if (encIn.size() != 2 || encOut.size() != 2 || decIn.size() != 7 || decOut.size() != 3) {
      throw new ArtifactException(
          "variant '" + variant.name + "': expected signatures encode (2 inputs, 2 outputs) and "
              + "decode_step (7 inputs, 3 outputs) in the manifest, got encode " + encIn + " -> "
              + encOut + ", decode_step " + decIn + " -> " + decOut);
    }
    long[] srcIds = shape(encIn.get(0), "int64", 2, problems);
    long[] mask = shape(encIn.get(1), null, 2, problems);
    long[] crossK = shape(encOut.get(0), "float32", 5, problems);
    shape(encOut.get(1), "float32", 5, problems);
    shape(decIn.get(0), "int64", 2, problems);
    shape(decIn.get(1), "int64", 1, problems);
    long[] decMask = shape(decIn.get(2), null, 2, problems);
    for (int i = 3; i < 5; i++) {
      same(decIn.get(i), crossK, "float32", problems);
    }
    long[] selfK = shape(decIn.get(5), "float32", 5, problems);
    same(decIn.get(6), selfK, "float32", problems);
    long[] logits = shape(decOut.get(0), "float32", 2, problems);
    same(decOut.get(1), selfK, "float32", problems);
    same(decOut.get(2), selfK, "float32", problems);

    String maskDtype = encIn.get(1).dtype;
    if (!maskDtype.equals(decIn.get(2).dtype)) {
      problems.add("src_mask is " + maskDtype + " in encode but " + decIn.get(2).dtype
          + " in decode_step");
    }
    if (maskDtype.equals("bool")) {
      problems.add(
          "src_mask is bool, which the ExecuTorch Android Java API cannot feed (Tensor.fromBlob "
              + "has no boolean overload and the program checks input dtypes): re-export the "
              + "Android program with src_mask as one of " + MASK_DTYPES);
    } else if (!MASK_DTYPES.contains(maskDtype)) {
      problems.add("src_mask dtype " + maskDtype + " is not one of " + MASK_DTYPES);
    }
    if (!problems.isEmpty()) {
      throw new ArtifactException("variant '" + variant.name + "' cannot run in this app: ",
          problems);
    }
    if (srcIds[0] != 1 || !Arrays.equals(srcIds, mask) || !Arrays.equals(mask, decMask)) {
      problems.add("src_ids/src_mask shapes must be (1, S) everywhere, got "
          + Arrays.toString(srcIds) + ", " + Arrays.toString(mask) + ", "
          + Arrays.toString(decMask));
    }
    if (crossK[1] != 1 || crossK[3] != srcIds[1]) {
      problems.add("cross_k must be (L, 1, h_kv, S, d) with S = " + srcIds[1] + ", got "
          + Arrays.toString(crossK));
    }
    if (selfK[1] != 1 || selfK[0] != crossK[0] || selfK[2] != crossK[2] || selfK[4] != crossK[4]) {
      problems.add("self_k must be (L, 1, h_kv, T, d) like cross_k, got " + Arrays.toString(selfK));
    }
    if (logits[0] != 1) {
      problems.add("logits must be (1, V), got " + Arrays.toString(logits));
    }
    if (!problems.isEmpty()) {
      throw new ArtifactException("variant '" + variant.name + "' has inconsistent shapes: ",
          problems);
    }
    return new ProgramSpec(
        (int) srcIds[1], (int) selfK[3], (int) logits[1], maskDtype, crossK, selfK);
  }

  /** The static shape of {@code spec} if it has the dtype (null: any) and rank; else a problem. */
  private static long[] shape(
      Manifest.TensorSpec spec, String dtype, int rank, List<String> problems) {
    long[] out = new long[rank];
    if (dtype != null && !dtype.equals(spec.dtype)) {
      problems.add(spec.name + " must be " + dtype + ", got " + spec.dtype);
    }
    if (spec.shape.size() != rank) {
      problems.add(spec.name + " must have rank " + rank + ", got shape " + spec.shape);
      Arrays.fill(out, 1);
      return out;
    }
    for (int i = 0; i < rank; i++) {
      Object dim = spec.shape.get(i);
      if (dim instanceof Long && (Long) dim > 0) {
        out[i] = (Long) dim;
      } else {
        problems.add(spec.name + " dim " + i + " must be a static size, got " + dim);
        out[i] = 1;
      }
    }
    return out;
  }

  private static void same(
      Manifest.TensorSpec spec, long[] want, String dtype, List<String> problems) {
    long[] got = shape(spec, dtype, want.length, problems);
    if (!Arrays.equals(got, want)) {
      problems.add(spec.name + " must have shape " + Arrays.toString(want) + ", got "
          + Arrays.toString(got));
    }
  }
}
