// Validate an AsyncAPI document with the official parser (pinned in package-lock.json).
// Usage: node tests/validate_asyncapi.mjs FILE  -> prints JSON {errors, warnings}; exit 1 on errors.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
const text = readFileSync(process.argv[2], "utf8");
const { document, diagnostics } = await parser.parse(text);
const pick = (severity) =>
  diagnostics
    .filter((d) => d.severity === severity)
    .map((d) => ({ code: d.code, message: d.message, path: d.path.join(".") }));
const report = {
  valid: document !== undefined,
  errors: pick(0),
  warnings: pick(1),
  channels: document ? document.channels().all().map((c) => c.address()) : [],
  operations: document ? document.operations().all().length : 0,
};
console.log(JSON.stringify(report, null, 2));
process.exit(report.valid && report.errors.length === 0 ? 0 : 1);
