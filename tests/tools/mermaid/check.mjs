// Parse the mermaid text on stdin with mermaid's own parser; exit 1 with the message if invalid.
import { JSDOM } from "jsdom";
import fs from "node:fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
const text = fs.readFileSync(0, "utf8");
try {
  const result = await mermaid.parse(text);
  console.log(JSON.stringify({ ok: true, diagramType: result.diagramType }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error.message || error) }));
  process.exit(1);
}
