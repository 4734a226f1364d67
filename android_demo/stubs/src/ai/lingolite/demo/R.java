package ai.lingolite.demo;

/** Stand-in for the R class AAPT generates from app/src/main/res. */
public final class R {
  public static final class layout {
    public static final int activity_main = 0;
  }

  public static final class id {
    public static final int status = 0;
    public static final int source = 0;
    public static final int source_lang = 0;
    public static final int target_lang = 0;
    public static final int decoding = 0;
    public static final int translate = 0;
    public static final int output = 0;
    public static final int latency = 0;
  }

  public static final class string {
    public static final int loading = 0;
    public static final int ready = 0;
    public static final int translating = 0;
    public static final int same_language = 0;
    public static final int empty_source = 0;
  }
}
