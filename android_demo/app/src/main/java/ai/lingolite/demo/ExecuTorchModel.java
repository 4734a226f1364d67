package ai.lingolite.demo;

import ai.lingolite.core.LingoliteArtifact;
import ai.lingolite.core.ProgramSpec;
import ai.lingolite.core.Seq2SeqModel;
import ai.lingolite.core.Translator;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.pytorch.executorch.EValue;
import org.pytorch.executorch.Module;
import org.pytorch.executorch.Tensor;

/**
 * The ExecuTorch backend: a thin {@link Seq2SeqModel} over the {@code .pte}'s {@code encode} and
 * {@code decode_step} methods (batch 1; beam search calls it once per beam).
 *
 * <p>executorch-android API used (checked against the sources listed in ../../README.md): {@code
 * Module.load(String, int)}, {@code Module.getMethods()}, {@code Module.execute(String,
 * EValue...)}, {@code Module.destroy()}, {@code EValue.from(Tensor)}, {@code EValue.toTensor()},
 * {@code Tensor.fromBlob(long[]|int[]|byte[]|float[], long[])}, {@code Tensor.fromBlobUnsigned},
 * {@code Tensor.getDataAsFloatArray()}.
 *
 * <p>Output tensors returned by {@code execute} wrap the method's own output memory (the JNI layer
 * wraps it without copying), which the next {@code execute} overwrites; every output is therefore
 * copied out with {@code getDataAsFloatArray()} before the next call. Cache tensors are never
 * written after creation, so beams may share them (the cache rule of {@link Seq2SeqModel}).
 */
final class ExecuTorchModel
    implements Seq2SeqModel<ExecuTorchModel.Memory, ExecuTorchModel.Cache>, AutoCloseable {

  /** Encoder output for one sentence, as input tensors ready for every decoder step. */
  static final class Memory {
    final Tensor srcMask;
    final Tensor crossK;
    final Tensor crossV;

    Memory(Tensor srcMask, Tensor crossK, Tensor crossV) {
      this.srcMask = srcMask;
      this.crossK = crossK;
      this.crossV = crossV;
    }
  }

  /** The self-attention cache of one hypothesis, (L, 1, h_kv, T, d) each. */
  static final class Cache {
    final Tensor selfK;
    final Tensor selfV;

    Cache(Tensor selfK, Tensor selfV) {
      this.selfK = selfK;
      this.selfV = selfV;
    }
  }

  private final Module module;
  private final ProgramSpec spec;
  private final int padId;

  private ExecuTorchModel(Module module, ProgramSpec spec, int padId) {
    this.module = module;
    this.spec = spec;
    this.padId = padId;
  }

  /** The program of a verified artifact folder, with the tokenizer's pad id. */
  static ExecuTorchModel open(LingoliteArtifact artifact) {
    return load(artifact.programFile, artifact.program, artifact.tokenizer.padId());
  }

  /** Tokenizer, this model and the search, as the app translates. */
  Translator<Memory, Cache> translator(LingoliteArtifact artifact) {
    return new Translator<>(
        artifact.tokenizer, this, artifact.program.maxSrcLen, artifact.bosId, artifact.eosId);
  }

  /** Loads the program (memory-mapped) and checks that it has both methods. */
  static ExecuTorchModel load(Path program, ProgramSpec spec, int padId) {
    Module module = Module.load(program.toString(), Module.LOAD_MODE_MMAP);
    List<String> methods = Arrays.asList(module.getMethods());
    if (!methods.contains("encode") || !methods.contains("decode_step")) {
      module.destroy();
      throw new IllegalStateException(
          program + " has methods " + methods + "; LingoLite needs 'encode' and 'decode_step'");
    }
    return new ExecuTorchModel(module, spec, padId);
  }

  @Override
  public int maxTgtLen() {
    return spec.maxTgtLen;
  }

  @Override
  public Memory encode(int[] srcIds) {
    int s = spec.maxSrcLen;
    if (srcIds.length > s) {
      throw new IllegalArgumentException(
          "source has " + srcIds.length + " ids, the program takes at most " + s);
    }
    long[] ids = new long[s];
    Arrays.fill(ids, padId);
    for (int i = 0; i < srcIds.length; i++) {
      ids[i] = srcIds[i];
    }
    long[] shape = {1, s};
    Tensor mask = maskTensor(srcIds.length, shape);
    EValue[] out =
        module.execute("encode", EValue.from(Tensor.fromBlob(ids, shape)), EValue.from(mask));
    float[] crossK = floats(out, 0, spec.crossShape, "encode");
    float[] crossV = floats(out, 1, spec.crossShape, "encode");
    return new Memory(
        mask, Tensor.fromBlob(crossK, spec.crossShape), Tensor.fromBlob(crossV, spec.crossShape));
  }

  /** {@code (1, S)} with ones on the real tokens, in the dtype the program declares. */
  private Tensor maskTensor(int real, long[] shape) {
    int s = (int) shape[1];
    switch (spec.maskDtype) {
      case "int64": {
        long[] m = new long[s];
        Arrays.fill(m, 0, real, 1L);
        return Tensor.fromBlob(m, shape);
      }
      case "int32": {
        int[] m = new int[s];
        Arrays.fill(m, 0, real, 1);
        return Tensor.fromBlob(m, shape);
      }
      case "uint8": {
        byte[] m = new byte[s];
        Arrays.fill(m, 0, real, (byte) 1);
        return Tensor.fromBlobUnsigned(m, shape);
      }
      case "int8": {
        byte[] m = new byte[s];
        Arrays.fill(m, 0, real, (byte) 1);
        return Tensor.fromBlob(m, shape);
      }
      case "float32": {
        float[] m = new float[s];
        Arrays.fill(m, 0, real, 1f);
        return Tensor.fromBlob(m, shape);
      }
      default: // ProgramSpec refuses every other dtype before a model is built
        throw new IllegalStateException("unsupported src_mask dtype " + spec.maskDtype);
    }
  }

  @Override
  public Cache initCache() {
    int n = (int) ProgramSpec.numel(spec.selfShape);
    return new Cache(
        Tensor.fromBlob(new float[n], spec.selfShape), Tensor.fromBlob(new float[n], spec.selfShape));
  }

  @Override
  public Step<Cache> decodeStep(int token, int pos, Memory memory, Cache cache) {
    EValue[] out =
        module.execute(
            "decode_step",
            EValue.from(Tensor.fromBlob(new long[] {token}, new long[] {1, 1})),
            EValue.from(Tensor.fromBlob(new long[] {pos}, new long[] {1})),
            EValue.from(memory.srcMask),
            EValue.from(memory.crossK),
            EValue.from(memory.crossV),
            EValue.from(cache.selfK),
            EValue.from(cache.selfV));
    float[] logits = floats(out, 0, new long[] {1, spec.vocabSize}, "decode_step");
    float[] k = floats(out, 1, spec.selfShape, "decode_step");
    float[] v = floats(out, 2, spec.selfShape, "decode_step");
    return new Step<>(
        logits,
        new Cache(Tensor.fromBlob(k, spec.selfShape), Tensor.fromBlob(v, spec.selfShape)));
  }

  /** Output {@code index} copied out as floats, after checking that it has the expected shape. */
  private static float[] floats(EValue[] out, int index, long[] shape, String method) {
    if (out == null || out.length <= index) {
      throw new IllegalStateException(
          method + " returned " + (out == null ? 0 : out.length) + " outputs, expected more than "
              + index + " (was the module destroyed?)");
    }
    Tensor t = out[index].toTensor();
    if (!Arrays.equals(t.shape(), shape)) {
      throw new IllegalStateException(
          method + " output " + index + " has shape " + Arrays.toString(t.shape())
              + ", the manifest says " + Arrays.toString(shape));
    }
    return t.getDataAsFloatArray();
  }

  @Override
  public void close() {
    module.destroy();
  }
}
