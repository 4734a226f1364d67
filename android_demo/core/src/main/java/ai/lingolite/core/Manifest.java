package ai.lingolite.core;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * An artifact folder and its {@code manifest.json}, read and checked the way {@code
 * runtime/manifest.py} does it (same schema, same refusals).
 *
 * <p>{@link #load} checks the format version, that every named file resolves inside the folder
 * (no absolute paths, no {@code ..}, no symlinks escaping it), and every file's size and sha256. It
 * refuses the folder with one {@link ArtifactException} that names every problem found.
 */
public final class Manifest {
  public static final int FORMAT_VERSION = 1;
  public static final String MANIFEST = "manifest.json";
  /** The vocabulary file written by {@code export/vocab.py}, unless {@code tokenizer.vocab} says. */
  public static final String DEFAULT_VOCAB = "vocab.json";

  private static final List<String> BACKENDS = Arrays.asList("onnxruntime", "executorch");

  private final Path folder;
  private final Map<String, Object> data;

  private Manifest(Path folder, Map<String, Object> data) {
    this.folder = folder;
    this.data = data;
  }

  /** Reads and verifies {@code folder/manifest.json}; hashes every listed file if asked. */
  public static Manifest load(Path folder, boolean verifyHashes) throws ArtifactException {
    if (!Files.isDirectory(folder)) {
      throw new ArtifactException(
          "artifact folder " + folder + " does not exist or is not a folder");
    }
    Path path = folder.resolve(MANIFEST);
    if (!Files.isRegularFile(path)) {
      throw new ArtifactException(
          path + " is missing: not an artifact folder (or an unfinished export)");
    }
    Map<String, Object> data;
    try {
      String text = new String(Files.readAllBytes(path), StandardCharsets.UTF_8);
      data = Json.asObject(Json.parse(text), path.toString());
    } catch (IOException exc) {
      throw new ArtifactException("cannot read " + path + ": " + exc.getMessage(), exc);
    } catch (IllegalArgumentException exc) {
      throw new ArtifactException(path + " is not valid: " + exc.getMessage(), exc);
    }
    Object version = data.get("format_version");
    if (!(version instanceof Long) || (Long) version != FORMAT_VERSION) {
      throw new ArtifactException(
          path
              + ": format_version "
              + Json.describe(version)
              + " is not supported; this app reads format_version "
              + FORMAT_VERSION
              + ". Re-export with a matching LingoLite.");
    }
    List<String> problems = new ArrayList<>();
    for (String key : new String[] {"model", "tokenizer", "variants", "files"}) {
      if (!(data.get(key) instanceof Map)) {
        problems.add("key '" + key + "' must be a JSON object, got " + Json.describe(data.get(key)));
      }
    }
    if (!problems.isEmpty()) {
      throw new ArtifactException(path + ": ", problems);
    }

    Set<String> named = new LinkedHashSet<>();
    Map<String, Object> tok = Json.asObject(data.get("tokenizer"), "tokenizer");
    for (String key : new String[] {"config", "model"}) {
      if (tok.get(key) instanceof String) {
        named.add((String) tok.get(key));
      } else {
        problems.add("tokenizer." + key + " must name a file, got " + Json.describe(tok.get(key)));
      }
    }
    // An imported Marian model (runtime/manifest.py's rules): decoding starts from pad, so bos is
    // the pad id, and a single-pair model has no language codes.
    boolean marian = MarianTokenizer.VOCAB_TYPE.equals(tok.get("type"));
    Set<Long> ids = new java.util.HashSet<>();
    int idCount = 0;
    for (String key : new String[] {"pad_id", "bos_id", "eos_id", "unk_id"}) {
      if (!(tok.get(key) instanceof Long)) {
        problems.add("tokenizer." + key + " must be an integer, got " + Json.describe(tok.get(key)));
      } else if ((Long) tok.get(key) < 0) {
        problems.add("tokenizer." + key + " must be >= 0, got " + tok.get(key));
      } else if (marian && key.equals("bos_id")) {
        if (!tok.get(key).equals(tok.get("pad_id"))) {
          problems.add("tokenizer.bos_id " + tok.get(key) + " must be the pad_id "
              + tok.get("pad_id"));
        }
      } else {
        ids.add((Long) tok.get(key));
        idCount++;
      }
    }
    Object langIds = tok.get("lang_ids");
    if (!(langIds instanceof Map) || (!marian && ((Map<?, ?>) langIds).isEmpty())) {
      problems.add("tokenizer.lang_ids must be a non-empty object, got " + Json.describe(langIds));
    } else {
      for (Map.Entry<?, ?> e : ((Map<?, ?>) langIds).entrySet()) {
        Object id = e.getValue();
        if (!(id instanceof Long) || (Long) id < 0) {
          problems.add(
              "tokenizer.lang_ids." + e.getKey() + " must be an integer >= 0, got "
                  + Json.describe(id));
        } else {
          ids.add((Long) id);
          idCount++;
        }
      }
    }
    if (ids.size() != idCount) {
      problems.add("tokenizer: special and language-tag ids must be distinct");
    }
    Map<String, Object> variants = Json.asObject(data.get("variants"), "variants");
    for (Map.Entry<String, Object> v : variants.entrySet()) {
      String vname = v.getKey();
      if (!(v.getValue() instanceof Map)
          || !(((Map<?, ?>) v.getValue()).get("files") instanceof Map)) {
        problems.add("variant '" + vname + "' must be an object with a 'files' object");
        continue;
      }
      Map<String, Object> entry = Json.asObject(v.getValue(), "variant");
      if (!BACKENDS.contains(entry.get("backend"))) {
        problems.add(
            "variant '" + vname + "': backend " + Json.describe(entry.get("backend"))
                + " not in " + BACKENDS);
      }
      for (Map.Entry<String, Object> f : Json.asObject(entry.get("files"), "files").entrySet()) {
        if (f.getValue() instanceof String) {
          named.add((String) f.getValue());
        } else {
          problems.add(
              "variant '" + vname + "': file for '" + f.getKey() + "' must be a string, got "
                  + Json.describe(f.getValue()));
        }
      }
    }

    Map<String, Object> hashed = new TreeMap<>(Json.asObject(data.get("files"), "files"));
    for (String name : named) {
      if (!hashed.containsKey(name)) {
        problems.add("file '" + name + "' is used but has no sha256 entry in 'files'");
      }
    }
    for (Map.Entry<String, Object> h : hashed.entrySet()) {
      String name = h.getKey();
      Path file;
      try {
        file = resolveInside(folder, name, "file");
      } catch (ArtifactException exc) {
        problems.add(exc.getMessage());
        continue;
      }
      if (!Files.isRegularFile(file)) {
        problems.add("file '" + name + "' is missing");
        continue;
      }
      if (!(h.getValue() instanceof Map)
          || !(((Map<?, ?>) h.getValue()).get("sha256") instanceof String)) {
        problems.add("files['" + name + "'] must hold a sha256 string");
        continue;
      }
      Map<String, Object> meta = Json.asObject(h.getValue(), "files entry");
      try {
        long size = Files.size(file);
        Object bytes = meta.get("bytes");
        if (bytes != null && !(bytes instanceof Long && (Long) bytes == size)) {
          problems.add(
              "file '" + name + "' has " + size + " bytes, the manifest says "
                  + Json.describe(bytes));
        } else if (verifyHashes && !sha256(file).equals(meta.get("sha256"))) {
          problems.add(
              "file '" + name + "' does not match its sha256 in the manifest "
                  + "(modified or corrupted)");
        }
      } catch (IOException exc) {
        problems.add("cannot read file '" + name + "': " + exc.getMessage());
      }
    }
    if (!problems.isEmpty()) {
      throw new ArtifactException("refusing artifact folder " + folder + ": ", problems);
    }
    return new Manifest(folder, data);
  }

  /**
   * Resolves {@code name} inside {@code folder}: refuses absolute paths and any path (after
   * following symlinks of the parts that exist) that leaves the folder.
   */
  public static Path resolveInside(Path folder, String name, String what)
      throws ArtifactException {
    if (name == null || name.isEmpty()) {
      throw new ArtifactException(what + " name must be a non-empty string");
    }
    Path relative = folder.getFileSystem().getPath(name);
    if (relative.isAbsolute() || name.startsWith("/") || name.startsWith("\\")) {
      throw new ArtifactException(
          what + " '" + name + "' must be a path relative to " + folder + ", not absolute");
    }
    for (Path part : relative) {
      // Stricter than runtime/manifest.py, which allows '..' that stays inside: '..' after a
      // symlink means something else to a lexical normalizer than to the file system.
      if (part.toString().equals("..")) {
        throw new ArtifactException(what + " '" + name + "' must not contain '..'");
      }
    }
    Path root;
    try {
      root = folder.toRealPath();
    } catch (IOException exc) {
      throw new ArtifactException("cannot resolve folder " + folder + ": " + exc.getMessage(), exc);
    }
    Path resolved = realPathOfExistingPrefix(root.resolve(relative).normalize());
    if (!resolved.startsWith(root)) {
      throw new ArtifactException(
          what + " '" + name + "' resolves to " + resolved + ", outside its folder " + root);
    }
    return resolved;
  }

  /** Like Python's non-strict {@code Path.resolve()}: follows links as far as the path exists. */
  private static Path realPathOfExistingPrefix(Path path) throws ArtifactException {
    Path existing = path;
    List<Path> rest = new ArrayList<>();
    while (existing != null && !Files.exists(existing, LinkOption.NOFOLLOW_LINKS)) {
      rest.add(0, existing.getFileName());
      existing = existing.getParent();
    }
    if (existing == null) {
      return path;
    }
    try {
      Path real = existing.toRealPath();
      for (Path part : rest) {
        real = real.resolve(part);
      }
      return real.normalize();
    } catch (IOException exc) {
      // A dangling symlink: report where it points, which is never inside a verified folder.
      throw new ArtifactException("cannot resolve " + path + " (broken link?): " + exc, exc);
    }
  }

  /** Lowercase hex sha256 of a file, streamed. */
  public static String sha256(Path file) throws IOException {
    MessageDigest digest;
    try {
      digest = MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException exc) {
      throw new IllegalStateException("SHA-256 is not available", exc);
    }
    byte[] buffer = new byte[1 << 16];
    try (InputStream in = Files.newInputStream(file)) {
      int n;
      while ((n = in.read(buffer)) > 0) {
        digest.update(buffer, 0, n);
      }
    }
    StringBuilder hex = new StringBuilder();
    for (byte b : digest.digest()) {
      hex.append(Character.forDigit((b >> 4) & 0xF, 16)).append(Character.forDigit(b & 0xF, 16));
    }
    return hex.toString();
  }

  // ------------------------------------------------------------------ accessors

  public Path folder() {
    return folder;
  }

  /** The raw parsed manifest. */
  public Map<String, Object> data() {
    return Collections.unmodifiableMap(data);
  }

  public Map<String, Object> model() {
    return Json.asObject(data.get("model"), "model");
  }

  /** An integer field of the model config (e.g. {@code max_src_len}); an error if absent. */
  public int modelInt(String key) throws ArtifactException {
    try {
      return Json.asInt(model().get(key), "model." + key);
    } catch (IllegalArgumentException exc) {
      throw new ArtifactException(folder.resolve(MANIFEST) + ": " + exc.getMessage(), exc);
    }
  }

  private Map<String, Object> tokenizer() {
    return Json.asObject(data.get("tokenizer"), "tokenizer");
  }

  /** Target languages in manifest order ({@code tokenizer.languages}, else the lang_ids keys). */
  public List<String> languages() {
    Object listed = tokenizer().get("languages");
    List<String> out = new ArrayList<>();
    if (listed instanceof List) {
      for (Object o : Json.asArray(listed, "tokenizer.languages")) {
        out.add(Json.asString(o, "tokenizer.languages[]"));
      }
    } else {
      out.addAll(langIds().keySet());
    }
    return out;
  }

  /**
   * The directions the model was trained on ({@code "en-de"}, ...): the only ones to serve. A
   * manifest written before the {@code directions} field existed serves every pair of its
   * languages.
   */
  public List<String> directions() {
    Object listed = data.get("directions");
    List<String> out = new ArrayList<>();
    if (listed == null) {
      for (String a : languages()) {
        for (String b : languages()) {
          if (!a.equals(b)) {
            out.add(a + "-" + b);
          }
        }
      }
      return out;
    }
    for (Object o : Json.asArray(listed, "directions")) {
      out.add(Json.asString(o, "directions[]"));
    }
    return out;
  }

  /**
   * The source languages of the trained {@link #directions}, in their order: what the app's
   * source picker offers (a single-pair model such as an imported OPUS-MT en-de: only "en").
   */
  public List<String> sourceLanguages() {
    Set<String> out = new LinkedHashSet<>();
    for (String d : directions()) {
      out.add(d.substring(0, d.indexOf('-')));
    }
    return new ArrayList<>(out);
  }

  /** The targets trained from {@code src}, in {@link #directions} order (empty if none). */
  public List<String> targetLanguages(String src) {
    List<String> out = new ArrayList<>();
    for (String d : directions()) {
      if (d.startsWith(src + "-")) {
        out.add(d.substring(src.length() + 1));
      }
    }
    return out;
  }

  /**
   * Throws {@link IllegalArgumentException} naming the trained directions unless {@code
   * src-tgt} is one of them (as the Python runtime's {@code TranslatorError}).
   */
  public void requireDirection(String src, String tgt) {
    List<String> trained = directions();
    if (!trained.contains(src + "-" + tgt)) {
      throw new IllegalArgumentException(
          "direction " + src + "-" + tgt + " was not trained; this model translates "
              + String.join(", ", trained));
    }
  }

  public Map<String, Integer> langIds() {
    Map<String, Integer> out = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e :
        Json.asObject(tokenizer().get("lang_ids"), "tokenizer.lang_ids").entrySet()) {
      out.put(e.getKey(), Json.asInt(e.getValue(), "tokenizer.lang_ids." + e.getKey()));
    }
    return out;
  }

  /** {@code tokenizer.<name>_id}, e.g. {@code specialId("eos")}. */
  public int specialId(String name) {
    return Json.asInt(tokenizer().get(name + "_id"), "tokenizer." + name + "_id");
  }

  /**
   * The hash-verified vocabulary file for the Java tokenizer: {@code tokenizer.vocab} if set,
   * else {@value #DEFAULT_VOCAB}. It must be listed in {@code files} (so that it was verified).
   */
  public Path vocabFile() throws ArtifactException {
    Object named = tokenizer().get("vocab");
    String name = named instanceof String ? (String) named : DEFAULT_VOCAB;
    if (!Json.asObject(data.get("files"), "files").containsKey(name)) {
      throw new ArtifactException(
          folder + " has no verified vocabulary file '" + name + "' for the Java tokenizer; "
              + "export it with `python -m export.vocab` before the manifest is written");
    }
    return resolveInside(folder, name, "vocabulary file");
  }

  public Map<String, Variant> variants() {
    Map<String, Variant> out = new LinkedHashMap<>();
    for (Map.Entry<String, Object> e : Json.asObject(data.get("variants"), "variants").entrySet()) {
      Map<String, Object> entry = Json.asObject(e.getValue(), "variant " + e.getKey());
      Map<String, Path> files = new LinkedHashMap<>();
      for (Map.Entry<String, Object> f : Json.asObject(entry.get("files"), "files").entrySet()) {
        files.put(f.getKey(), folder.resolve(Json.asString(f.getValue(), "file")));
      }
      Object sigs = entry.get("signatures");
      Map<String, Object> signatures =
          sigs instanceof Map ? Json.asObject(sigs, "signatures") : new LinkedHashMap<>();
      out.put(
          e.getKey(),
          new Variant(
              e.getKey(),
              String.valueOf(entry.get("backend")),
              String.valueOf(entry.get("precision")),
              files,
              signatures));
    }
    return out;
  }

  /** The first variant of {@code backend}; the error lists what the folder has instead. */
  public Variant variantFor(String backend) throws ArtifactException {
    List<String> have = new ArrayList<>();
    for (Variant v : variants().values()) {
      if (v.backend.equals(backend)) {
        return v;
      }
      have.add(v.backend + "/" + v.precision);
    }
    throw new ArtifactException(folder + " has no " + backend + " program; it has " + have);
  }

  /** One exported program set: backend, precision, files by role and I/O signatures. */
  public static final class Variant {
    public final String name;
    public final String backend;
    public final String precision;
    public final Map<String, Path> files;
    private final Map<String, Object> signatures;

    Variant(
        String name,
        String backend,
        String precision,
        Map<String, Path> files,
        Map<String, Object> signatures) {
      this.name = name;
      this.backend = backend;
      this.precision = precision;
      this.files = Collections.unmodifiableMap(files);
      this.signatures = signatures;
    }

    /** Input specs of a method, in order; empty when the manifest has no signature for it. */
    public List<TensorSpec> inputs(String method) {
      return specs(method, "inputs");
    }

    public List<TensorSpec> outputs(String method) {
      return specs(method, "outputs");
    }

    private List<TensorSpec> specs(String method, String side) {
      List<TensorSpec> out = new ArrayList<>();
      Object sig = signatures.get(method);
      if (!(sig instanceof Map)) {
        return out;
      }
      Object list = Json.asObject(sig, "signature").get(side);
      if (!(list instanceof List)) {
        return out;
      }
      for (Object spec : Json.asArray(list, method + "." + side)) {
        out.add(TensorSpec.fromJson(spec, method + "." + side));
      }
      return out;
    }
  }

  /** {@code {"name": str, "dtype": str, "shape": [int | str]}}; a string names a dynamic dim. */
  public static final class TensorSpec {
    public final String name;
    public final String dtype;
    public final List<Object> shape;

    TensorSpec(String name, String dtype, List<Object> shape) {
      this.name = name;
      this.dtype = dtype;
      this.shape = Collections.unmodifiableList(shape);
    }

    static TensorSpec fromJson(Object value, String what) {
      Map<String, Object> m = Json.asObject(value, what);
      return new TensorSpec(
          Json.asString(m.get("name"), what + ".name"),
          Json.asString(m.get("dtype"), what + ".dtype"),
          new ArrayList<>(Json.asArray(m.get("shape"), what + ".shape")));
    }

    @Override
    public String toString() {
      return name + ":" + dtype + shape;
    }
  }
}
