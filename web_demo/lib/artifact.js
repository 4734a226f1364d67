// An exported artifact folder over HTTP: manifest.json checked as runtime/manifest.py does (format
// version, file names inside the folder, size and sha256 of every file read, here with WebCrypto),
// the trained directions, and the ONNX Runtime variants. Every problem is an ArtifactError naming
// the file and the value.

export const FORMAT_VERSION = 1;

export class ArtifactError extends Error {}

/** The growing decoder's input and output names in graph order, one cross K/V and cache tensor
 * per decoder layer: lingolite.signatures.grow_decoder_names. */
export function growDecoderNames(layers) {
  const layerNames = (name) => Array.from({ length: layers }, (_, i) => `${name}_${i}`);
  return {
    inputs: ["tokens", "src_mask", ...["cross_k", "cross_v", "past_k", "past_v"].flatMap(layerNames)],
    outputs: ["logits", ...["present_k", "present_v"].flatMap(layerNames)],
  };
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A file name of the manifest, refused unless it stays inside the folder. */
function checkName(name, what) {
  const bad =
    typeof name !== "string" ||
    name === "" ||
    name.startsWith("/") ||
    name.includes("\\") ||
    /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(name) ||
    name.split("/").some((part) => part === ".." || part === "." || part === "");
  if (bad) throw new ArtifactError(`${what} ${JSON.stringify(name)} is not a file name inside the artifact folder`);
  return name;
}

export class Artifact {
  constructor(baseUrl, manifest, fetchFn) {
    this.baseUrl = baseUrl;
    this.manifest = manifest;
    this.fetch = fetchFn;
  }

  /** Fetch and check `manifest.json` under `baseUrl` (a folder URL ending in "/"). */
  static async open(baseUrl, fetchFn = globalThis.fetch.bind(globalThis)) {
    const url = new URL("manifest.json", baseUrl);
    let response;
    try {
      response = await fetchFn(url);
    } catch (exc) {
      throw new ArtifactError(`cannot fetch ${url}: ${exc.message}`);
    }
    if (!response.ok) throw new ArtifactError(`missing file ${url} (HTTP ${response.status})`);
    let manifest;
    try {
      manifest = await response.json();
    } catch (exc) {
      throw new ArtifactError(`${url} is not valid JSON: ${exc.message}`);
    }
    const problems = [];
    if (manifest?.format_version !== FORMAT_VERSION) {
      problems.push(`format_version ${JSON.stringify(manifest?.format_version)} is not supported (expected ${FORMAT_VERSION})`);
    }
    for (const key of ["model", "tokenizer", "variants", "files"]) {
      if (typeof manifest?.[key] !== "object" || manifest[key] === null) problems.push(`"${key}" is missing or not an object`);
    }
    if (problems.length) throw new ArtifactError(`refusing ${url}: ${problems.join("; ")}`);
    return new Artifact(baseUrl, manifest, fetchFn);
  }

  get languages() {
    return [...(this.manifest.tokenizer.languages ?? [])];
  }

  /**
   * The trained directions ["en-de", ...] from the manifest's "directions"; an older manifest
   * without it gives every pair of tokenizer languages and fromManifest false.
   */
  directions() {
    const listed = this.manifest.directions;
    if (listed === undefined) {
      const langs = this.languages;
      const pairs = langs.flatMap((a) => langs.filter((b) => b !== a).map((b) => `${a}-${b}`));
      return { directions: pairs, fromManifest: false };
    }
    const langs = new Set(this.languages);
    const valid = (d) => {
      if (typeof d !== "string") return false;
      const [src, tgt, ...rest] = d.split("-");
      return !rest.length && src !== tgt && langs.has(src) && langs.has(tgt);
    };
    const bad = Array.isArray(listed)
      ? listed.filter((d, i) => !valid(d) || listed.indexOf(d) !== i)
      : [listed];
    if (bad.length || !listed.length) {
      throw new ArtifactError(`manifest "directions" ${JSON.stringify(bad.length ? bad : listed)} are not pairs of the tokenizer's languages ${JSON.stringify([...langs])}`);
    }
    return { directions: [...listed], fromManifest: true };
  }

  /** Precision -> {encoder, decoder, cache} of the ONNX Runtime variants: the growing-cache
   * decoder (files.decoder_grow) when the variant has one with per-layer inputs (its manifest
   * signature), as runtime/onnx_backend.py's "auto"; else the static decoder. */
  onnxVariants() {
    const out = {};
    const growInputs = JSON.stringify(growDecoderNames(this.manifest.model?.n_decoder_layers ?? 0).inputs);
    for (const [name, v] of Object.entries(this.manifest.variants)) {
      if (v?.backend !== "onnxruntime") continue;
      const files = v.files ?? {};
      if (!files.encoder || !files.decoder) throw new ArtifactError(`variant "${name}" names no encoder or decoder file`);
      const recorded = (v.signatures?.decoder_grow?.inputs ?? []).map((spec) => spec?.name);
      const grow = Boolean(files.decoder_grow) && JSON.stringify(recorded) === growInputs;
      out[v.precision] = {
        encoder: checkName(files.encoder, `variant ${name} encoder`),
        decoder: grow ? checkName(files.decoder_grow, `variant ${name} decoder_grow`) : checkName(files.decoder, `variant ${name} decoder`),
        cache: grow ? "grow" : "static",
      };
    }
    if (!Object.keys(out).length) throw new ArtifactError("the manifest has no onnxruntime variant (export with python -m export.onnx)");
    return out;
  }

  /** The bytes of `name`, after checking its size and sha256 against the manifest. */
  async bytes(name) {
    checkName(name, "file");
    const entry = this.manifest.files[name];
    if (!entry) throw new ArtifactError(`${name} is not listed in the manifest's files`);
    const url = new URL(name, this.baseUrl);
    let response;
    try {
      response = await this.fetch(url);
    } catch (exc) {
      throw new ArtifactError(`cannot fetch ${url}: ${exc.message}`);
    }
    if (!response.ok) throw new ArtifactError(`missing file ${name} (HTTP ${response.status} for ${url})`);
    const data = await response.arrayBuffer();
    if (data.byteLength !== entry.bytes) {
      throw new ArtifactError(`${name} has ${data.byteLength} bytes, the manifest says ${entry.bytes}`);
    }
    const digest = hex(await crypto.subtle.digest("SHA-256", data));
    if (digest !== entry.sha256) {
      throw new ArtifactError(`hash mismatch for ${name}: sha256 ${digest}, the manifest says ${entry.sha256}`);
    }
    return new Uint8Array(data);
  }

  async json(name) {
    return JSON.parse(new TextDecoder().decode(await this.bytes(name)));
  }
}
