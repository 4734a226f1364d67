// Shared helpers of the Node tests: read (gzipped) JSON goldens and optional inputs named by
// environment variables (the pytest suite, tests/test_web.py, sets them).
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

export const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), "golden");

export function readJson(file) {
  const raw = fs.readFileSync(file);
  return JSON.parse((file.endsWith(".gz") ? zlib.gunzipSync(raw) : raw).toString("utf8"));
}

/** The file an environment variable names, or null (with the reason) when it is unset. */
export function envFile(name) {
  const value = process.env[name];
  if (!value) return { file: null, why: `${name} is not set (tests/test_web.py sets it)` };
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist`);
  return { file: value, why: "" };
}
