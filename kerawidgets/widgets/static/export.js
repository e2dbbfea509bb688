// kerawidgets ExportBox front end: download links for the editor's figures and a
// "Copy code" button for its to_code(). One ES module, no imports (anywidget loads
// it from its text). The pure half is exported for tests/js/export.test.mjs.
// File names and code are data: only textContent and attributes are set.

// --- pure ---------------------------------------------------------------------------

/** A byte count for a link: "812 B", "45 kB", "1.2 MB". */
export function formatSize(bytes) {
  const n = Number(bytes) || 0;
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${Math.round(n / 1000)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** The bytes of a base64 string (as the kernel sends each file). */
export function decodeBase64(data) {
  const text = atob(data || "");
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** What the status says after a copy: how many lines went to the clipboard, or what to do. */
export function copyMessage(code, copied) {
  const lines = (code || "").split("\n").filter((line) => line.trim() !== "").length;
  if (copied) return `Copied ${lines} line${lines === 1 ? "" : "s"} of code to the clipboard.`;
  return "The browser did not allow the clipboard here: the code is selected below, "
    + "press Ctrl+C (\u2318C on a Mac) to copy it.";
}

// --- DOM ----------------------------------------------------------------------------

function html(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function build(el) {
  const root = html("div", "kwx", el);
  const row = html("div", "kwx-row", root);
  const figures = html("button", "kwx-button kwx-figures", row, "\u2193 Figures (PNG, SVG)");
  figures.type = "button";
  figures.title = "Draw the current figures as PNG and SVG files to download";
  const copy = html("button", "kwx-button kwx-copy", row, "Copy code");
  copy.type = "button";
  copy.title = "Copy to_code(): a script that replays these edits on the original model";
  const links = html("div", "kwx-links", root);
  const note = html("div", "kwx-note", root);
  note.setAttribute("role", "status");
  const copied = html("div", "kwx-copied", root);
  copied.setAttribute("role", "status");
  const details = html("details", "kwx-code-box", root);
  html("summary", "", details, "Code of these edits (to_code)");
  const code = html("textarea", "kwx-code", details);
  code.readOnly = true;
  code.spellcheck = false;
  code.rows = 8;
  return { root, figures, copy, links, note, copied, details, code };
}

function drawLinks(dom, files, urls) {
  for (const url of urls.splice(0)) URL.revokeObjectURL(url);
  dom.links.replaceChildren();
  for (const file of files || []) {
    const url = URL.createObjectURL(new Blob([decodeBase64(file.data)], { type: file.mime }));
    urls.push(url);
    const a = html("a", "kwx-file", dom.links, file.name);
    a.href = url;
    a.download = file.name;
    a.title = `Download ${file.name}`;
    html("span", "kwx-size", a, ` ${formatSize(file.size)}`);
  }
}

async function copyCode(dom, text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch (error) { /* refused: fall back to selecting the text */ }
  dom.details.open = true;
  dom.code.focus();
  dom.code.select();
  try { return document.execCommand("copy"); } catch (error) { return false; }
}

function render({ model, el }) {
  const dom = build(el);
  const urls = [];
  const update = () => {
    dom.code.value = model.get("code") || "";
    dom.note.textContent = model.get("note") || "";
    dom.figures.disabled = !model.get("can_draw");
    dom.root.classList.remove("kwx-drawing");
    drawLinks(dom, model.get("files"), urls);
  };
  const onCode = () => { dom.code.value = model.get("code") || ""; dom.copied.textContent = ""; };
  const onDraw = () => { dom.figures.disabled = !model.get("can_draw"); };
  const onNote = () => { dom.note.textContent = model.get("note") || ""; dom.root.classList.remove("kwx-drawing"); };
  const onFiles = () => drawLinks(dom, model.get("files"), urls);
  update();
  model.on("change:code", onCode);
  model.on("change:can_draw", onDraw);
  model.on("change:note", onNote);
  model.on("change:files", onFiles);
  dom.figures.addEventListener("click", () => {
    dom.root.classList.add("kwx-drawing");
    dom.note.textContent = "Drawing the figures\u2026";
    model.send({ event: "figures" });
  });
  dom.copy.addEventListener("click", async () => {
    const text = model.get("code") || "";
    dom.copied.textContent = copyMessage(text, await copyCode(dom, text));
  });
  return () => {
    model.off("change:code", onCode);
    model.off("change:can_draw", onDraw);
    model.off("change:note", onNote);
    model.off("change:files", onFiles);
    for (const url of urls.splice(0)) URL.revokeObjectURL(url);
  };
}

export default { render };
