// Parse the mermaid text on stdin with mermaid's own parser; exit 1 with the message if invalid.
// The configuration the text sets (front matter, %%{init}%% directives) is printed as "config"
// when there is any, so a test can tell that no label text reached mermaid as a directive.
import { JSDOM } from "jsdom";
import fs from "node:fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
const text = fs.readFileSync(0, "utf8");
try {
  const result = await mermaid.parse(text);
  const report = { ok: true, diagramType: result.diagramType };
  if (result.config && Object.keys(result.config).length) report.config = result.config;
  console.log(JSON.stringify(report));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error.message || error) }));
  process.exit(1);
}
