// The pure parts of kerawidgets/widgets/static/export.js (the editor's export box), without a
// browser. Run: node --test tests/js/  (scripts/test.sh does).
import { test } from "node:test";
import assert from "node:assert/strict";

const MODULE = new URL("../../kerawidgets/widgets/static/export.js", import.meta.url);
const ex = await import(MODULE.href);

test("sizes read as B, kB, MB", () => {
  assert.equal(ex.formatSize(0), "0 B");
  assert.equal(ex.formatSize(999), "999 B");
  assert.equal(ex.formatSize(45_400), "45 kB");
  assert.equal(ex.formatSize(1_250_000), "1.3 MB");
  assert.equal(ex.formatSize(undefined), "0 B");
});

test("base64 decodes to the kernel's bytes", () => {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff];
  const data = Buffer.from(png).toString("base64");
  assert.deepEqual([...ex.decodeBase64(data)], png);
  assert.equal(ex.decodeBase64("").length, 0);
});

test("the copy message counts the code's lines, or says how to copy by hand", () => {
  const code = "import keras\nimport kerawidgets\n\nmodel = f(model)\n";
  assert.equal(ex.copyMessage(code, true), "Copied 3 lines of code to the clipboard.");
  assert.equal(ex.copyMessage("x = 1", true), "Copied 1 line of code to the clipboard.");
  assert.match(ex.copyMessage(code, false), /selected below, press Ctrl\+C/);
});
