package android.util;

public final class Log {
  private Log() {}

  public static int e(String tag, String msg, Throwable tr) {
    throw new UnsupportedOperationException("stub");
  }
}
