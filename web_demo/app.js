// The page: load and verify the artifact folder, fill the pickers from the manifest, translate.
// Every failure is shown in #error (never a blank page). window.lingoliteDemo exposes the same
// translate call for benchmarks/web.py.
import { ort, OnnxBackend } from "./lib/onnx_backend.js";
import { Artifact } from "./lib/artifact.js";
import { loadTokenizer } from "./lib/tokenizer.js";
import { Translator } from "./lib/translator.js";

const $ = (id) => document.getElementById(id);

function showError(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = `Error: ${error?.message ?? error}`;
  $("status").textContent = "Stopped by an error.";
  console.error(error);
}
window.addEventListener("error", (e) => showError(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

ort.env.wasm.numThreads = 1; // one WebAssembly thread: no SharedArrayBuffer or COOP/COEP needed
ort.env.wasm.proxy = false;
ort.env.wasm.wasmPaths = new URL("vendor/ort/", location.href).href;

/** The artifact folder: ./artifacts/ or ?artifacts=relative/folder/ on this origin. */
function artifactUrl() {
  const param = new URLSearchParams(location.search).get("artifacts") ?? "artifacts/";
  const url = new URL(param.endsWith("/") ? param : `${param}/`, location.href);
  if (url.origin !== location.origin) throw new Error(`artifacts ${param} is not on this site`);
  return url;
}

function fill(select, values, labels = values) {
  select.replaceChildren(...values.map((v, i) => new Option(labels[i], v)));
}

class Demo {
  async load() {
    this.artifact = await Artifact.open(artifactUrl());
    const { directions, fromManifest } = this.artifact.directions();
    this.directions = directions;
    if (!fromManifest) {
      const notice = $("notice");
      notice.hidden = false;
      notice.textContent =
        "This manifest does not list its trained directions; offering every pair of the tokenizer's " +
        "languages, some of which the model may not have been trained on.";
    }
    this.variants = this.artifact.onnxVariants();
    this.model = this.artifact.manifest.model;
    this.tokenizer = loadTokenizer(await this.artifact.json(this.artifact.manifest.tokenizer.vocab));
    this.backends = {};
    const sources = [...new Set(directions.map((d) => d.split("-")[0]))];
    fill($("src"), sources);
    fill($("precision"), Object.keys(this.variants));
    if (this.variants.int8) $("precision").value = "int8";
    this.fillTargets();
    $("src").addEventListener("change", () => this.fillTargets());
    for (const id of ["src", "tgt", "precision", "beams", "translate"]) $(id).disabled = false;
    $("form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.onTranslate();
    });
    $("status").textContent = `Ready: ${directions.length} directions, ${this.tokenizer.vocabSize} pieces.`;
  }

  fillTargets() {
    const src = $("src").value;
    fill($("tgt"), this.directions.filter((d) => d.startsWith(`${src}-`)).map((d) => d.split("-")[1]));
  }

  /** The translator of one precision; its graphs are fetched and verified on first use. */
  async translator(precision) {
    if (!this.variants[precision]) throw new Error(`no ${precision} variant; the folder has ${Object.keys(this.variants)}`);
    if (!this.backends[precision]) {
      const files = this.variants[precision];
      $("status").textContent = `Loading the ${precision} model…`;
      const [enc, dec] = await Promise.all([this.artifact.bytes(files.encoder), this.artifact.bytes(files.decoder)]);
      this.backends[precision] = await OnnxBackend.create(enc, dec, this.model, files.cache);
    }
    const { bos_id: bosId, eos_id: eosId } = this.artifact.manifest.tokenizer;
    return new Translator(this.tokenizer, this.backends[precision], this.directions, { bosId, eosId });
  }

  async translate(text, src, tgt, { precision = "int8", numBeams = 1 } = {}) {
    const translator = await this.translator(precision);
    const t0 = performance.now();
    const out = await translator.translate(text, src, tgt, { numBeams });
    return { ...out, totalMs: performance.now() - t0, sincePageLoadMs: performance.now() };
  }

  async onTranslate() {
    $("translate").disabled = true;
    $("error").hidden = true;
    $("output").dataset.state = "busy";
    try {
      const out = await this.translate($("source").value, $("src").value, $("tgt").value, {
        precision: $("precision").value,
        numBeams: Number($("beams").value),
      });
      $("output").textContent = out.text;
      if (out.truncated) {
        const notice = $("notice");
        notice.hidden = false;
        notice.textContent = "A sentence reached the length limit before it ended: its translation is cut short.";
      }
      const perToken = out.steps ? out.decodeMs / out.steps : 0;
      const wps = out.totalMs > 0 ? (out.words / out.totalMs) * 1000 : 0;
      $("speed").textContent =
        `encode ${out.encodeMs.toFixed(1)} ms · ${perToken.toFixed(2)} ms per token · ` +
        `${wps.toFixed(0)} words/s · ${out.sentences} sentence(s), ${$("precision").value}, ` +
        `${$("beams").selectedOptions[0].text}, ${this.variants[$("precision").value].cache} cache`;
      $("status").textContent = "Done.";
    } catch (error) {
      $("output").textContent = "";
      $("speed").textContent = "";
      showError(error);
    } finally {
      $("output").dataset.state = "done";
      $("output").dataset.count = String(Number($("output").dataset.count ?? 0) + 1);
      $("translate").disabled = false;
    }
  }
}

const demo = new Demo();
window.lingoliteDemo = demo;
demo.ready = demo.load().then(
  () => {
    document.body.dataset.ready = "true";
  },
  (error) => {
    document.body.dataset.ready = "error";
    showError(error);
  },
);
