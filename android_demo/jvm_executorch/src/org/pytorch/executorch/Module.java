package org.pytorch.executorch;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * JVM stand-in for executorch-android's {@code Module} with the API the app uses ({@code
 * load(String, int)}, {@code LOAD_MODE_MMAP}, {@code execute(String, EValue...)}, {@code
 * getMethods()}, {@code destroy()}). Instead of JNI into {@code libexecutorch.so} it runs the
 * program in the ExecuTorch runtime of the Python {@code executorch} package (the same C++ {@code
 * Program}/{@code Method} code and release the AAR is built from), in a child process started by
 * the command in the system property {@value #BRIDGE_PROPERTY} (the program path is appended; the
 * working directory is {@value #BRIDGE_DIR_PROPERTY} if set). The protocol is spoken by {@code
 * tests/executorch_bridge.py}.
 *
 * <p>This lets the app's adapter, tokenizer, search and manifest code run end to end against a
 * real exported {@code .pte} on a desktop JVM. What it cannot stand for is the JNI layer itself.
 */
public final class Module {
  public static final int LOAD_MODE_FILE = 0;
  public static final int LOAD_MODE_MMAP = 1;

  static final String BRIDGE_PROPERTY = "executorch.bridge";
  static final String BRIDGE_DIR_PROPERTY = "executorch.bridge.dir";
  private static final int OP_CLOSE = 0;
  private static final int OP_EXECUTE = 1;

  private final Process process;
  private final DataOutputStream toChild;
  private final DataInputStream fromChild;
  private final String[] methods;
  private boolean destroyed;

  private Module(Process process, DataInputStream fromChild, String[] methods) {
    this.process = process;
    this.toChild = new DataOutputStream(new BufferedOutputStream(process.getOutputStream()));
    this.fromChild = fromChild;
    this.methods = methods;
  }

  public static Module load(String modelPath, int loadMode) {
    if (loadMode != LOAD_MODE_FILE && loadMode != LOAD_MODE_MMAP) {
      throw new IllegalArgumentException("unsupported load mode " + loadMode);
    }
    String command = System.getProperty(BRIDGE_PROPERTY);
    if (command == null || command.trim().isEmpty()) {
      throw new IllegalStateException(
          "this is the JVM stand-in for executorch-android; set -D" + BRIDGE_PROPERTY
              + "=\"<python> -m tests.executorch_bridge\" to run programs");
    }
    List<String> argv = new ArrayList<>(Arrays.asList(command.trim().split("\\s+")));
    argv.add(modelPath);
    ProcessBuilder builder = new ProcessBuilder(argv).redirectError(ProcessBuilder.Redirect.INHERIT);
    String dir = System.getProperty(BRIDGE_DIR_PROPERTY);
    if (dir != null) {
      builder.directory(new File(dir));
    }
    Process process;
    try {
      process = builder.start();
    } catch (IOException e) {
      throw new RuntimeException("cannot start the ExecuTorch bridge " + argv + ": " + e, e);
    }
    DataInputStream in = new DataInputStream(new BufferedInputStream(process.getInputStream()));
    try {
      if (in.readInt() != 0) {
        String message = readString(in);
        process.destroy();
        throw new RuntimeException("Failed to load " + modelPath + ": " + message);
      }
      String[] names = new String[in.readInt()];
      for (int i = 0; i < names.length; i++) {
        names[i] = readString(in);
      }
      return new Module(process, in, names);
    } catch (IOException e) {
      process.destroy();
      throw new RuntimeException("the ExecuTorch bridge died loading " + modelPath + ": " + e, e);
    }
  }

  public synchronized String[] getMethods() {
    return methods.clone();
  }

  public synchronized EValue[] execute(String methodName, EValue... inputs) {
    if (destroyed) {
      throw new IllegalStateException("execute(" + methodName + ") on a destroyed Module");
    }
    try {
      toChild.writeInt(OP_EXECUTE);
      writeString(toChild, methodName);
      toChild.writeInt(inputs.length);
      for (EValue input : inputs) {
        Tensor t = input.toTensor();
        toChild.writeInt(t.dtype());
        toChild.writeInt(t.shapeRef().length);
        for (long d : t.shapeRef()) {
          toChild.writeLong(d);
        }
        toChild.writeInt(t.bytes().length);
        toChild.write(t.bytes());
      }
      toChild.flush();
      if (fromChild.readInt() != 0) {
        throw new RuntimeException("Execution of method " + methodName + " failed: "
            + readString(fromChild));
      }
      EValue[] out = new EValue[fromChild.readInt()];
      for (int i = 0; i < out.length; i++) {
        int dtype = fromChild.readInt();
        long[] shape = new long[fromChild.readInt()];
        for (int d = 0; d < shape.length; d++) {
          shape[d] = fromChild.readLong();
        }
        byte[] data = new byte[fromChild.readInt()];
        fromChild.readFully(data);
        out[i] = EValue.from(new Tensor(dtype, shape, data));
      }
      return out;
    } catch (IOException e) {
      throw new RuntimeException("the ExecuTorch bridge died in " + methodName + ": " + e, e);
    }
  }

  public synchronized void destroy() {
    if (destroyed) {
      return;
    }
    destroyed = true;
    try {
      toChild.writeInt(OP_CLOSE);
      toChild.flush();
      toChild.close();
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (IOException e) {
      process.destroyForcibly();
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }

  private static void writeString(DataOutputStream out, String s) throws IOException {
    byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
    out.writeInt(bytes.length);
    out.write(bytes);
  }

  private static String readString(DataInputStream in) throws IOException {
    byte[] bytes = new byte[in.readInt()];
    in.readFully(bytes);
    return new String(bytes, StandardCharsets.UTF_8);
  }
}
