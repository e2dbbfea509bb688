// PlotImage: shows the kernel's PNG at the CSS width it was drawn for, and reports how the
// plot is shown (its width, the screen's pixel ratio, JupyterLab's theme) so the kernel
// can draw the next one for it. Reports are debounced and sent only when something
// changed; the image never widens its box (max-width: 100%), so a redraw cannot feed back.

const DEBOUNCE_MS = 200;
const MIN_CHANGE_PX = 8;

function shownWidth(el) {
  return Math.floor(el.getBoundingClientRect().width);
}

function isDark() {
  return document.body.dataset.jpThemeLight === "false";
}

function showImage(model, img, state) {
  const value = model.get("value");
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = null;
  const bytes = value && value.byteLength ? value : null;
  if (!bytes) {
    img.removeAttribute("src");
    img.hidden = true;
    return;
  }
  state.url = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  img.src = state.url;
  img.hidden = false;
  const width = model.get("drawn_width");
  img.style.width = width > 0 ? `${width}px` : "";
  img.alt = model.get("alt") || "";
}

function report(model, el) {
  const width = shownWidth(el);
  if (width <= 0) return; // hidden: nothing to draw for
  const ratio = window.devicePixelRatio || 1;
  const dark = isDark();
  const changes = {};
  if (Math.abs(width - model.get("shown_width")) >= MIN_CHANGE_PX) changes.shown_width = width;
  if (Math.abs(ratio - model.get("pixel_ratio")) >= 0.125) changes.pixel_ratio = ratio;
  if (dark !== model.get("dark")) changes.dark = dark;
  if (Object.keys(changes).length === 0) return;
  for (const [name, value] of Object.entries(changes)) model.set(name, value);
  model.save_changes();
}

function render({ model, el }) {
  el.classList.add("kw-plot");
  const img = document.createElement("img");
  img.className = "kw-plot-img";
  img.hidden = true;
  el.appendChild(img);
  const state = { url: null, timer: null, media: null };
  const later = () => {
    clearTimeout(state.timer);
    state.timer = setTimeout(() => report(model, el), DEBOUNCE_MS);
  };
  const onImage = () => showImage(model, img, state);
  model.on("change:value", onImage);
  model.on("change:drawn_width", onImage);
  onImage();
  const resize = new ResizeObserver(later);
  resize.observe(el);
  const theme = new MutationObserver(later);
  theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light"] });
  const watchRatio = () => { // a matchMedia query per ratio: re-armed when it changes
    if (state.media) state.media.removeEventListener("change", onRatio);
    state.media = window.matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
    state.media.addEventListener("change", onRatio);
  };
  const onRatio = () => { watchRatio(); later(); };
  watchRatio();
  later();
  return () => {
    clearTimeout(state.timer);
    resize.disconnect();
    theme.disconnect();
    if (state.media) state.media.removeEventListener("change", onRatio);
    if (state.url) URL.revokeObjectURL(state.url);
    model.off("change:value", onImage);
    model.off("change:drawn_width", onImage);
  };
}

export default { render };
