// Drives the built site in headless Chromium (Debian's, through playwright-core; no browser is
// downloaded). Used by tests/test_web.py (mode "ui": through the page's controls) and
// benchmarks/web.py (mode "bench": timing through window.lingoliteDemo).
//
//   node tools/drive.mjs SPEC.json > RESULT.json
//
// SPEC: {url, chromium, mode, jobs: [{precision, beams, src, tgt, texts}], screenshot?, pages?}
// where pages are extra URLs to open and report (error pages). RESULT: {jobs: [{outputs, errors,
// speeds}], requests: [every URL the browser asked for], pages: [{url, ready, error, notice,
// sources, targets}],
// consoleErrors, readyMs, firstTranslation}.
import fs from "node:fs";
import { chromium } from "playwright-core";

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const allowed = new URL(spec.url).origin;
const result = { jobs: [], requests: [], pages: [], consoleErrors: [] };

const browser = await chromium.launch({
  executablePath: spec.chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  context.on("request", (request) => result.requests.push(request.url()));
  // Nothing may leave the site's origin: such a request is recorded above and aborted here.
  await context.route("**/*", (route) =>
    new URL(route.request().url()).origin === allowed ? route.continue() : route.abort("blockedbyclient"),
  );

  async function open(url) {
    const page = await context.newPage();
    page.on("console", (m) => m.type() === "error" && result.consoleErrors.push(`${url}: ${m.text()}`));
    page.on("pageerror", (e) => result.consoleErrors.push(`${url}: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
    return page;
  }

  for (const entry of spec.pages ?? []) {
    const { url, force } = typeof entry === "string" ? { url: entry } : entry;
    const page = await open(url);
    if (force && (await page.evaluate(() => document.body.dataset.ready)) === "true") {
      // Put a pair the pickers do not offer into them and press Translate.
      await page.evaluate((f) => {
        for (const id of ["src", "tgt"]) document.getElementById(id).add(new Option(f[id], f[id]));
        document.getElementById("src").value = f.src;
        document.getElementById("tgt").value = f.tgt;
        document.getElementById("source").value = f.text;
      }, force);
      await page.click("#translate");
      await page.waitForFunction(() => Number(document.getElementById("output").dataset.count ?? 0) > 0);
    }
    result.pages.push({
      url,
      forced: !!force,
      ready: await page.evaluate(() => document.body.dataset.ready),
      error: await page.evaluate(() => (document.getElementById("error").hidden ? "" : document.getElementById("error").textContent)),
      notice: await page.evaluate(() => (document.getElementById("notice").hidden ? "" : document.getElementById("notice").textContent)),
      sources: await page.evaluate(() => [...document.getElementById("src").options].map((o) => o.value)),
      targets: await page.evaluate(() => [...document.getElementById("tgt").options].map((o) => o.value)),
    });
    await page.close();
  }

  const page = await open(spec.url);
  result.readyMs = await page.evaluate(() => performance.now());
  result.ready = await page.evaluate(() => document.body.dataset.ready);
  result.loadError = await page.evaluate(() => (document.getElementById("error").hidden ? "" : document.getElementById("error").textContent));
  if (result.ready === "true") {
    for (const job of spec.jobs) {
      const out = { ...job, outputs: [], errors: [], speeds: [], stats: [] };
      if ((job.mode ?? spec.mode) === "bench") {
        for (const text of job.texts) {
          const stats = await page.evaluate(
            ([t, j]) => window.lingoliteDemo.translate(t, j.src, j.tgt, { precision: j.precision, numBeams: j.beams }),
            [text, job],
          );
          result.firstTranslation ??= stats;
          out.outputs.push(stats.text);
          out.stats.push(stats);
        }
      } else {
        await page.selectOption("#src", job.src);
        await page.selectOption("#tgt", job.tgt);
        await page.selectOption("#precision", job.precision);
        await page.selectOption("#beams", String(job.beams));
        for (const text of job.texts) {
          const count = await page.evaluate(() => Number(document.getElementById("output").dataset.count ?? 0));
          await page.fill("#source", text);
          await page.click("#translate");
          await page.waitForFunction((n) => Number(document.getElementById("output").dataset.count ?? 0) > n, count, { timeout: 120000 });
          out.outputs.push(await page.textContent("#output"));
          out.errors.push(await page.evaluate(() => (document.getElementById("error").hidden ? "" : document.getElementById("error").textContent)));
          out.speeds.push(await page.textContent("#speed"));
        }
      }
      result.jobs.push(out);
    }
  }
  if (spec.screenshot) await page.screenshot({ path: spec.screenshot, fullPage: true });
  await page.close();
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
