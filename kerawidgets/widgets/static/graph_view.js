// kerawidgets GraphView front end: draws the scene computed in the kernel as SVG.
// No build step, no imports. Names from the model are data: only textContent is used.

// --- The scene contract --------------------------------------------------------------
// Built by `Layout.scene()` in kerawidgets/layout.py, whose TypedDicts carry the same
// names and types (tests/test_scene_contract.py checks the two agree).

/**
 * @typedef {object} SceneBox  A drawn rectangle: its id, top-left corner, width and height.
 * @property {string} id
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 */

/**
 * @typedef {object} SceneNode  A layer call, drawn as a box.
 * @property {string} id  node id: "dense", "dense:1" (second call), "block/conv"
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 * @property {"node"} kind
 * @property {string} name
 * @property {string} path  the layer's path ("backbone/conv1"), what a selection names
 * @property {string} class_name
 * @property {string} family  colour family: "conv", "dense", "norm", ...
 * @property {number} params
 * @property {boolean} trainable
 * @property {string | null} activation
 * @property {string | null} group  the innermost group around it
 * @property {string[]} out  output shapes as text
 * @property {string[]} inp  input shapes as text
 * @property {string} label  the name, cut to fit the box
 * @property {string} sub  class and output shape, cut to fit
 */

/**
 * @typedef {object} SceneClosedGroup  A closed group (nested model, folded block) drawn as one box.
 * @property {string} id
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 * @property {"group"} kind
 * @property {string} name
 * @property {string} class_name
 * @property {string | null} group  the group around it
 * @property {number} count  layer calls inside, at any depth
 * @property {string[]} members  node ids inside, at any depth (their heat and marks show on it)
 * @property {number} params
 * @property {boolean} trainable  every member trainable
 * @property {string} label
 * @property {string} sub
 */

/**
 * @typedef {object} SceneFrame  An open group: a frame around its contents, with a header.
 * @property {string} id
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 * @property {string} name
 * @property {string} class_name
 * @property {number} count
 * @property {number} depth  groups around it
 * @property {string} label
 */

/**
 * @typedef {object} SceneEdge  A drawn edge between two boxes.
 * @property {string} source  id of a drawn box (a node or a closed group)
 * @property {string} target
 * @property {string} shape  the tensor's shape as text
 * @property {number} count  graph edges folded into this one
 * @property {number[][]} points  [x, y] from the source's bottom to the target's top
 */

/**
 * @typedef {object} SceneGroup  Any group of the graph, drawn or not.
 * @property {string} name
 * @property {string | null} parent
 * @property {number} count
 */

/**
 * One row per graph node, drawn or not (search, revealing a node): id, name, class, group.
 * @typedef {[string, string, string, string | null]} SceneIndexRow
 */

/**
 * @typedef {object} Scene  Everything the front end needs to draw one layout.
 * @property {string} model  the model's name
 * @property {number} width
 * @property {number} height
 * @property {Array<SceneNode | SceneClosedGroup>} nodes
 * @property {SceneFrame[]} frames  outermost first
 * @property {SceneEdge[]} edges
 * @property {Object<string, string>} visible  every node id -> id of the box showing it
 * @property {string[]} open_groups  sorted
 * @property {Object<string, SceneGroup>} groups  every group id -> its name, parent and size
 * @property {SceneIndexRow[]} index
 */

const SVGNS = "http://www.w3.org/2000/svg";
let viewCounter = 0;

function svg(tag, attrs, parent) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

function html(tag, cls, parent) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (parent) parent.appendChild(node);
  return node;
}

function heatColor(v) {
  v = Math.max(0, Math.min(1, Number(v) || 0));
  const stops = [[0, [255, 255, 255]], [0.5, [253, 174, 97]], [1, [215, 48, 31]]];
  for (let i = 0; i < stops.length - 1; i++) {
    const [a, ca] = stops[i];
    const [b, cb] = stops[i + 1];
    if (v <= b) {
      const t = (v - a) / (b - a);
      const rgb = ca.map((x, j) => Math.round(x + (cb[j] - x) * t));
      return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
    }
  }
  return "rgb(215,48,31)";
}

function fmtParams(n) {
  if (!n) return "";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

function render({ model, el }) {
  const uid = `kw${++viewCounter}${Math.random().toString(36).slice(2, 7)}`;
  const root = html("div", "kw-graph", el);
  const toolbar = html("div", "kw-toolbar", root);
  const searchWrap = html("div", "kw-search", toolbar);
  const search = html("input", "kw-search-input", searchWrap);
  search.type = "search";
  search.placeholder = "Find a layer\u2026";
  search.setAttribute("aria-label", "Find a layer");
  const results = html("ul", "kw-results", searchWrap);
  results.setAttribute("role", "listbox");
  const buttons = [];
  const mkButton = (label, title, fn) => {
    const b = html("button", "kw-button", toolbar);
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", fn);
    buttons.push(b);
    return b;
  };
  const status = html("span", "kw-status", toolbar);
  const viewport = html("div", "kw-viewport", root);
  // Shown while the kernel lays the graph out again after a group was opened or closed.
  const pendingNote = html("div", "kw-pending-note", viewport);
  pendingNote.textContent = "laying out\u2026";
  pendingNote.setAttribute("role", "status");
  pendingNote.setAttribute("aria-live", "polite");
  const canvas = svg("svg", { class: "kw-svg", role: "group" }, viewport);
  const defs = svg("defs", {}, canvas);
  const marker = svg("marker", {
    id: `${uid}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, defs);
  svg("path", { d: "M0,0 L10,5 L0,10 z", class: "kw-arrowhead" }, marker);
  const world = svg("g", { class: "kw-world" }, canvas);
  const tooltip = html("div", "kw-tooltip", root);
  tooltip.setAttribute("role", "tooltip");

  let scale = 1, tx = 0, ty = 0;
  let nodeEls = new Map();
  let boxes = new Map();
  // Everything the keyboard can reach: nodes, closed groups and open groups' headers,
  // by id (a group id is either a closed box or an open frame, never both).
  let focusables = new Map();
  let order = [];
  let succ = new Map(), pred = new Map();
  let pendingFocus = null;
  let firstDraw = true;
  let focusedId = null; // the last focused node or group header (kept across redraws)
  let tabStopId = null; // roving tabindex: the one element of the graph with tabindex=0

  function applyTransform() {
    world.setAttribute("transform", `translate(${tx},${ty}) scale(${scale})`);
  }

  function applyTheme() {
    const theme = model.get("theme");
    root.classList.toggle("kw-dark", theme === "dark");
    root.classList.toggle("kw-light", theme === "light");
    viewport.style.height = model.get("height") || "520px";
  }

  function fit() {
    const s = model.get("scene") || {};
    const W = viewport.clientWidth || 600, H = viewport.clientHeight || 400;
    const w = (s.width || 1) + 40, h = (s.height || 1) + 40;
    scale = Math.min(W / w, H / h, 1.25);
    tx = (W - (s.width || 0) * scale) / 2;
    ty = (H - (s.height || 0) * scale) / 2;
    applyTransform();
  }

  function initialView() {
    const s = model.get("scene") || {};
    const W = viewport.clientWidth || 600, H = viewport.clientHeight || 400;
    const fitScale = Math.min(W / ((s.width || 1) + 40), H / ((s.height || 1) + 40), 1.1);
    if (fitScale >= 0.55) return fit();
    // A long model: readable zoom, top of the graph, centred horizontally.
    scale = Math.min(0.8, Math.max(fitScale, W / ((s.width || 1) + 40), 0.55));
    tx = (W - (s.width || 0) * scale) / 2;
    ty = 20;
    applyTransform();
  }

  function centerOn(id) {
    const b = focusables.get(id);
    if (!b) return;
    const W = viewport.clientWidth || 600, H = viewport.clientHeight || 400;
    if (scale < 0.6) scale = 0.8;
    tx = W / 2 - (b.x + b.w / 2) * scale;
    ty = H / 2 - (b.y + b.h / 2) * scale;
    applyTransform();
  }

  function ensureVisible(id) {
    const b = focusables.get(id);
    if (!b) return;
    const W = viewport.clientWidth || 600, H = viewport.clientHeight || 400;
    const x0 = b.x * scale + tx, y0 = b.y * scale + ty;
    const x1 = x0 + b.w * scale, y1 = y0 + b.h * scale;
    if (x0 < 0 || y0 < 0 || x1 > W || y1 > H) centerOn(id);
  }

  function sameList(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  function setPending(on) {
    root.classList.toggle("kw-pending", on);
    root.setAttribute("aria-busy", on ? "true" : "false");
  }

  function setOpen(groups) {
    const wanted = Array.from(new Set(groups)).sort();
    const drawn = (model.get("scene") || {}).open_groups || [];
    // Until the kernel's new scene arrives, say so (the old drawing stays meanwhile).
    if (!sameList(wanted, drawn)) setPending(true);
    model.set("open_groups", wanted);
    model.save_changes();
  }

  function onOpenGroups() {
    // The kernel refused or corrected the request and the drawing already matches it.
    const drawn = (model.get("scene") || {}).open_groups || [];
    if (sameList(model.get("open_groups") || [], drawn)) setPending(false);
  }

  function toggleGroup(id, open) {
    const current = new Set(model.get("open_groups") || []);
    if (open) current.add(id); else current.delete(id);
    setOpen(Array.from(current));
  }

  function ancestorsOf(nodeId) {
    const s = model.get("scene") || {};
    const groups = s.groups || {};
    const entry = (s.index || []).find((row) => row[0] === nodeId);
    const out = [];
    let g = entry ? entry[3] : null;
    while (g) { out.push(g); g = groups[g] ? groups[g].parent : null; }
    return out;
  }

  function selectNode(id) {
    const b = boxes.get(id);
    if (!b) return;
    model.set("selected", { id, layer: b.item.path || id });
    model.save_changes();
  }

  function jumpTo(id) {
    const s = model.get("scene") || {};
    if (s.visible && s.visible[id] === id && boxes.has(id)) {
      centerOn(id);
      selectNode(id);
      focusOn(id);
      return;
    }
    pendingFocus = id;
    setOpen([...(model.get("open_groups") || []), ...ancestorsOf(id)]);
  }

  function showTooltip(item, evt) {
    tooltip.replaceChildren();
    const title = html("div", "kw-tt-title", tooltip);
    title.textContent = item.path || item.name || item.id;
    const rows = [];
    if (item.kind === "node") {
      rows.push(["class", item.class_name]);
      rows.push(["node", item.id]);
      (item.inp || []).forEach((s, i) => rows.push([i ? "" : "input", s]));
      (item.out || []).forEach((s, i) => rows.push([i ? "" : "output", s]));
      rows.push(["params", String(item.params || 0)]);
      if (item.activation) rows.push(["activation", item.activation]);
      rows.push(["trainable", item.trainable ? "yes" : "no (frozen)"]);
    } else if (item.kind === "frame") {
      rows.push(["group", `${item.class_name}, ${item.count} layers, open`]);
      rows.push(["", "Enter or click the header to close"]);
    } else {
      rows.push(["group", `${item.class_name}, ${item.count} layers`]);
      rows.push(["params", String(item.params || 0)]);
      rows.push(["", "Enter or click to open"]);
    }
    const h = model.get("heat") || {};
    if (item.id in h) rows.push(["heat", Number(h[item.id]).toFixed(3)]);
    const m = model.get("marks") || {};
    if (m[item.id]) rows.push(["mark", m[item.id]]);
    for (const [k, v] of rows) {
      const row = html("div", "kw-tt-row", tooltip);
      html("span", "kw-tt-key", row).textContent = k;
      html("span", "kw-tt-val", row).textContent = v;
    }
    tooltip.style.display = "block";
    moveTooltip(evt);
  }

  function moveTooltip(evt) {
    if (!evt) return;
    const r = root.getBoundingClientRect();
    let x = evt.clientX - r.left + 14, y = evt.clientY - r.top + 14;
    const tw = tooltip.offsetWidth, th = tooltip.offsetHeight;
    if (x + tw > r.width) x = Math.max(0, evt.clientX - r.left - tw - 10);
    if (y + th > r.height) y = Math.max(0, evt.clientY - r.top - th - 10);
    tooltip.style.left = `${x}px`;
    tooltip.style.top = `${y}px`;
  }

  function hideTooltip() { tooltip.style.display = "none"; }

  // The hover card for keyboard users: beside the focused node (right, else left,
  // else below), so the nodes under it stay in view.
  function showTooltipFor(id) {
    const f = focusables.get(id);
    if (!f) return;
    showTooltip(f.item, null);
    const box = root.getBoundingClientRect();
    const n = f.el.getBoundingClientRect();
    const tw = tooltip.offsetWidth, th = tooltip.offsetHeight;
    const left = n.left - box.left, right = n.right - box.left;
    const top = n.top - box.top, bottom = n.bottom - box.top;
    let x = right + 10, y = top;
    if (x + tw > box.width) x = left - tw - 10;
    if (x < 0) { x = Math.max(0, Math.min(left, box.width - tw)); y = bottom + 8; }
    if (y + th > box.height) y = Math.max(0, Math.min(top - th - 8, box.height - th));
    tooltip.style.left = `${x}px`;
    tooltip.style.top = `${y}px`;
  }

  // --- focus: one tab stop for the whole graph ----------------------------------
  function setTabStop(id) {
    if (!focusables.has(id)) id = order.length ? order[0] : null;
    if (tabStopId !== id && focusables.has(tabStopId)) {
      focusables.get(tabStopId).el.setAttribute("tabindex", "-1");
    }
    tabStopId = id;
    if (id !== null) focusables.get(id).el.setAttribute("tabindex", "0");
  }

  function focusOn(id) {
    const f = focusables.get(id);
    if (!f) return false;
    setTabStop(id);
    f.el.focus({ preventScroll: true });
    return true;
  }

  function graphHasFocus() {
    return world.contains(document.activeElement);
  }

  // Where a node or group id is drawn now: itself, its closed group, or an open
  // group's header.
  function drawnAs(id) {
    if (id === null || id === undefined) return null;
    if (focusables.has(id)) return id;
    const s = model.get("scene") || {};
    const shown = (s.visible || {})[id];
    return shown && focusables.has(shown) ? shown : null;
  }

  function draw() {
    const s = model.get("scene") || {};
    const hadFocus = graphHasFocus();
    world.replaceChildren();
    nodeEls = new Map();
    boxes = new Map();
    focusables = new Map();
    order = [];
    tabStopId = null;
    succ = new Map();
    pred = new Map();
    const framesLayer = svg("g", { class: "kw-frames" }, world);
    const edgesLayer = svg("g", { class: "kw-edges" }, world);
    const nodesLayer = svg("g", { class: "kw-nodes" }, world);

    for (const f of s.frames || []) {
      const g = svg("g", { class: "kw-frame", "data-group": f.id }, framesLayer);
      svg("rect", { class: "kw-frame-body", x: f.x, y: f.y, width: f.w, height: f.h, rx: 8 }, g);
      const header = svg("g", {
        class: "kw-frame-header", tabindex: -1, role: "button",
        "aria-label": `Group ${f.name}, ${f.count} layers, open: press Enter to close`,
        "data-group": f.id,
      }, g);
      svg("rect", { class: "kw-frame-head", x: f.x, y: f.y, width: f.w, height: 22, rx: 8 }, header);
      const t = svg("text", { class: "kw-frame-label", x: f.x + 8, y: f.y + 15 }, header);
      t.textContent = f.label;
      const title = svg("title", {}, header);
      title.textContent = `${f.name} (${f.class_name}, ${f.count} layers): click to close`;
      header.addEventListener("click", (e) => {
        e.stopPropagation();
        focusedId = f.id;
        toggleGroup(f.id, false);
      });
      const frameItem = { ...f, kind: "frame", path: f.id };
      header.addEventListener("keydown", (e) => onNodeKey(e, frameItem));
      header.addEventListener("focus", () => onFocus(f.id));
      header.addEventListener("blur", hideTooltip);
      focusables.set(f.id, {
        el: header, x: f.x, y: f.y, w: f.w, h: 22, item: frameItem,
        parent: (s.groups || {})[f.id] ? s.groups[f.id].parent : null,
      });
    }

    for (const e of s.edges || []) {
      const d = "M" + e.points.map((p) => `${p[0]},${p[1]}`).join(" L");
      const p = svg("path", {
        class: "kw-edge", d, "marker-end": `url(#${uid}-arrow)`,
        "data-s": e.source, "data-t": e.target,
      }, edgesLayer);
      const title = svg("title", {}, p);
      title.textContent = e.shape + (e.count > 1 ? ` (${e.count} tensors)` : "");
      if (!succ.has(e.source)) succ.set(e.source, []);
      if (!pred.has(e.target)) pred.set(e.target, []);
      succ.get(e.source).push(e.target);
      pred.get(e.target).push(e.source);
    }

    const items = (s.nodes || []).slice().sort((a, b) => (a.y - b.y) || (a.x - b.x));
    for (const item of items) {
      const isGroup = item.kind !== "node";
      const fam = isGroup ? "group" : item.family;
      const g = svg("g", {
        class: `kw-node kw-fam-${fam}` + (isGroup ? " kw-closed" : "") +
          (item.trainable === false ? " kw-frozen" : ""),
        tabindex: -1, role: "button", "data-id": item.id,
      }, nodesLayer);
      g.setAttribute("aria-label", isGroup
        ? `Group ${item.name}, ${item.count} layers, press Enter to open`
        : `${item.name}, ${item.class_name}, output ${(item.out || []).join(" ")}`);
      if (isGroup) {
        svg("rect", { class: "kw-stack", x: item.x + 4, y: item.y + 4, width: item.w, height: item.h, rx: 6 }, g);
      }
      svg("rect", { class: "kw-body", x: item.x, y: item.y, width: item.w, height: item.h, rx: 6 }, g);
      svg("rect", { class: "kw-stripe", x: item.x, y: item.y + 3, width: 4, height: item.h - 6 }, g);
      const label = svg("text", { class: "kw-label", x: item.x + 10, y: item.y + 18 }, g);
      label.textContent = item.label;
      const sub = svg("text", { class: "kw-sub", x: item.x + 10, y: item.y + 34 }, g);
      sub.textContent = item.sub;
      if (item.params) {
        const pt = svg("text", { class: "kw-params", x: item.x + item.w - 6, y: item.y + 18 }, g);
        pt.textContent = fmtParams(item.params);
      }
      if (item.trainable === false) {
        const ft = svg("text", { class: "kw-frozen-tag", x: item.x + item.w - 6, y: item.y + 34 }, g);
        ft.textContent = "frozen";
      }
      const badge = svg("g", { class: "kw-badge" }, g);
      svg("circle", { cx: item.x + item.w - 2, cy: item.y + 2, r: 7 }, badge);
      svg("text", { x: item.x + item.w - 2, y: item.y + 5.5 }, badge);

      g.addEventListener("pointerenter", (evt) => showTooltip(item, evt));
      g.addEventListener("pointermove", moveTooltip);
      g.addEventListener("pointerleave", hideTooltip);
      g.addEventListener("click", (evt) => {
        evt.stopPropagation();
        if (dragMoved) return;
        if (isGroup) { focusedId = item.id; toggleGroup(item.id, true); } else selectNode(item.id);
      });
      g.addEventListener("keydown", (evt) => onNodeKey(evt, item));
      g.addEventListener("focus", () => onFocus(item.id));
      g.addEventListener("blur", hideTooltip);
      nodeEls.set(item.id, g);
      boxes.set(item.id, { x: item.x, y: item.y, w: item.w, h: item.h, item });
      focusables.set(item.id, {
        el: g, x: item.x, y: item.y, w: item.w, h: item.h, item, parent: item.group || null,
      });
    }
    // Reading order for Home / End and the default tab stop: top-down, then left-right.
    order = Array.from(focusables.keys()).sort((a, b) => {
      const p = focusables.get(a), q = focusables.get(b);
      return (p.y - q.y) || (p.x - q.x);
    });

    const nLayers = (s.index || []).length;
    const nParams = (s.nodes || []).reduce((acc, n) => acc + (n.params || 0), 0);
    status.textContent = `${s.model || ""} \u00b7 ${nLayers} nodes \u00b7 ${fmtParams(nParams) || 0} params`;
    applyHeat();
    applyMarks();
    applySelected();
    applySearch();
    if (firstDraw) {
      firstDraw = false;
      initialView();
    }
    setPending(false);
    const selectedId = drawnAs((model.get("selected") || {}).id);
    if (pendingFocus && boxes.has(pendingFocus)) {
      const id = pendingFocus;
      pendingFocus = null;
      centerOn(id);
      selectNode(id);
      focusOn(id);
    } else if (hadFocus) {
      // Keep the keyboard where it was: the same node, the group it folded into,
      // or the header of the group that opened.
      const id = drawnAs(focusedId) || selectedId || order[0];
      if (id !== undefined && id !== null) {
        focusOn(id);
        ensureVisible(id);
      }
    } else {
      setTabStop(selectedId || drawnAs(focusedId));
    }
    requestAnimationFrame(() => {
      root.dataset.painted = String(Number(root.dataset.painted || 0) + 1);
    });
  }

  function applyHeat() {
    const heat = model.get("heat") || {};
    for (const [id, g] of nodeEls) {
      const b = boxes.get(id);
      let v = heat[id];
      if (v === undefined && b.item.members) {
        const vals = b.item.members.filter((m) => m in heat).map((m) => heat[m]);
        if (vals.length) v = Math.max(...vals);
      }
      const body = g.querySelector(".kw-body");
      if (v === undefined) {
        g.classList.remove("kw-hot", "kw-hot-strong");
        body.style.fill = "";
        g.removeAttribute("data-heat");
      } else {
        g.classList.add("kw-hot");
        g.classList.toggle("kw-hot-strong", v > 0.72);
        body.style.fill = heatColor(v);
        g.setAttribute("data-heat", Number(v).toFixed(3));
      }
    }
  }

  function applyMarks() {
    const marks = model.get("marks") || {};
    for (const [id, g] of nodeEls) {
      const b = boxes.get(id);
      let m = marks[id];
      if (!m && b.item.members) {
        const found = b.item.members.find((x) => marks[x]);
        if (found) m = marks[found];
      }
      g.classList.toggle("kw-mark-edited", m === "edited");
      g.classList.toggle("kw-mark-error", m === "error");
      g.querySelector(".kw-badge text").textContent = m === "error" ? "!" : m === "edited" ? "\u270e" : "";
    }
  }

  function applySelected() {
    const sel = (model.get("selected") || {}).id;
    const s = model.get("scene") || {};
    const shown = sel && s.visible ? s.visible[sel] : null;
    for (const [id, g] of nodeEls) {
      const on = id === sel || id === shown;
      g.classList.toggle("kw-selected", on);
      g.setAttribute("aria-pressed", on ? "true" : "false");
    }
    // Tab into the graph lands on the selection (the keyboard position wins while focused).
    if (!graphHasFocus() && nodeEls.size) setTabStop(drawnAs(sel) || drawnAs(focusedId));
  }

  // --- search ---------------------------------------------------------------
  let matches = [];
  let activeResult = -1; // the result the arrow keys are on (-1: none yet)
  function applySearch() {
    const q = search.value.trim().toLowerCase();
    const s = model.get("scene") || {};
    matches = q ? (s.index || []).filter((r) =>
      r[0].toLowerCase().includes(q) || r[2].toLowerCase().includes(q)) : [];
    const hits = new Set(matches.map((r) => (s.visible || {})[r[0]]));
    for (const [id, g] of nodeEls) g.classList.toggle("kw-match", q !== "" && hits.has(id));
    results.replaceChildren();
    activeResult = -1;
    search.removeAttribute("aria-activedescendant");
    search.setAttribute("aria-expanded", "false");
    if (!q || document.activeElement !== search) { results.style.display = "none"; return; }
    matches.slice(0, 12).forEach((r, i) => {
      const li = html("li", "kw-result", results);
      li.id = `${uid}-result-${i}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      const name = html("span", "kw-result-name", li);
      name.textContent = r[0];
      const cls = html("span", "kw-result-class", li);
      cls.textContent = r[2];
      li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(r[0]); });
    });
    if (matches.length > 12) {
      const li = html("li", "kw-result kw-more", results);
      li.textContent = `\u2026 ${matches.length - 12} more`;
    }
    if (!matches.length) {
      const li = html("li", "kw-result kw-more", results);
      li.textContent = "no layer matches";
    }
    results.style.display = "block";
    search.setAttribute("aria-expanded", "true");
  }
  function setActiveResult(i) {
    const options = results.querySelectorAll(".kw-result[role='option']");
    if (!options.length) return;
    activeResult = (i + options.length) % options.length;
    options.forEach((li, j) => {
      li.classList.toggle("kw-active", j === activeResult);
      li.setAttribute("aria-selected", j === activeResult ? "true" : "false");
    });
    const li = options[activeResult];
    search.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }
  function pick(id) {
    results.style.display = "none";
    jumpTo(id);
  }
  search.setAttribute("role", "combobox");
  search.setAttribute("aria-autocomplete", "list");
  search.setAttribute("aria-expanded", "false");
  results.id = `${uid}-results`;
  search.setAttribute("aria-controls", results.id);
  search.addEventListener("input", applySearch);
  search.addEventListener("focus", applySearch);
  search.addEventListener("blur", () => { results.style.display = "none"; });
  search.addEventListener("keydown", (e) => {
    let handled = true;
    if (e.key === "ArrowDown") setActiveResult(activeResult + 1);
    else if (e.key === "ArrowUp") setActiveResult(activeResult < 0 ? -1 : activeResult - 1);
    else if (e.key === "Enter" && matches.length) {
      pick(matches[Math.max(0, Math.min(activeResult, 11))][0]);
    } else if (e.key === "Escape") { search.value = ""; applySearch(); }
    else handled = false;
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  });

  // --- keyboard navigation ------------------------------------------------
  // The open groups around an id, innermost first.
  function framesAround(id) {
    const groups = (model.get("scene") || {}).groups || {};
    const out = [];
    let g = focusables.has(id) ? focusables.get(id).parent : null;
    while (g) { out.push(g); g = groups[g] ? groups[g].parent : null; }
    return out;
  }
  function nearest(from, candidates, key) {
    const cx = from.x + from.w / 2, cy = from.y + from.h / 2;
    let best = null, bestScore = Infinity;
    for (const id of candidates) {
      const o = focusables.get(id);
      if (!o || o === from) continue;
      const dx = o.x + o.w / 2 - cx, dy = o.y + o.h / 2 - cy;
      let ok = false, score = 0;
      if (key === "ArrowDown") { ok = o.y > from.y + 1; score = dy + 3 * Math.abs(dx); }
      if (key === "ArrowUp") { ok = o.y < from.y - 1; score = -dy + 3 * Math.abs(dx); }
      if (key === "ArrowRight") { ok = dx > 1; score = dx + 3 * Math.abs(dy); }
      if (key === "ArrowLeft") { ok = dx < -1; score = -dx + 3 * Math.abs(dy); }
      if (ok && score < bestScore) { best = id; bestScore = score; }
    }
    return best;
  }
  // Down / Up follow the edges (crossing into or out of an open group passes its
  // header); Left / Right go to the nearest node beside; no edge: nearest below/above.
  function neighbour(id, key) {
    const here = focusables.get(id);
    if (!here) return null;
    const mine = framesAround(id);
    if (here.item.kind === "frame") {
      if (key === "ArrowDown") {
        const inside = order.filter((o) => o !== id && framesAround(o).includes(id));
        return nearest(here, inside, key) || nearest(here, order, key);
      }
      if (key === "ArrowUp") {
        return nearest(here, order.filter((o) => !framesAround(o).includes(id)), key);
      }
      return nearest(here, order, key);
    }
    if (key === "ArrowDown" || key === "ArrowUp") {
      const linked = (key === "ArrowDown" ? succ : pred).get(id) || [];
      const steps = new Set();
      for (const other of linked) {
        if (!focusables.has(other)) continue;
        const theirs = framesAround(other);
        if (key === "ArrowDown") {
          // Entering groups: the outermost open group around the target that is not around us.
          const entered = theirs.filter((g) => !mine.includes(g));
          steps.add(entered.length ? entered[entered.length - 1] : other);
        } else {
          // Leaving groups: the header of the innermost group we are in and it is not.
          const left = mine.filter((g) => !theirs.includes(g));
          steps.add(left.length ? left[0] : other);
        }
      }
      if (key === "ArrowUp" && !steps.size && mine.length) return mine[0];
      const best = nearest(here, Array.from(steps), key) ||
        Array.from(steps).find((x) => focusables.has(x));
      if (best) return best;
    }
    return nearest(here, order, key);
  }
  function onFocus(id) {
    focusedId = id;
    setTabStop(id);
    ensureVisible(id);
    showTooltipFor(id);
  }
  function onNodeKey(evt, item) {
    let next = null;
    if (evt.key === "Enter" || evt.key === " ") {
      focusedId = item.id;
      if (item.kind === "frame") toggleGroup(item.id, false);
      else if (item.kind !== "node") toggleGroup(item.id, true);
      else selectNode(item.id);
    } else if (evt.key.startsWith("Arrow")) {
      next = neighbour(item.id, evt.key);
    } else if (evt.key === "Home") {
      next = order[0];
    } else if (evt.key === "End") {
      next = order[order.length - 1];
    } else {
      return;
    }
    // Handled here: keep the notebook's own shortcuts (arrows, Enter) out of it.
    evt.preventDefault();
    evt.stopPropagation();
    if (next) focusOn(next);
  }

  // --- pan and zoom ---------------------------------------------------------
  let dragging = null, dragMoved = false;
  viewport.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    dragging = { x: e.clientX, y: e.clientY, tx, ty };
    dragMoved = false;
  });
  const onMove = (e) => {
    if (!dragging) return;
    const dx = e.clientX - dragging.x, dy = e.clientY - dragging.y;
    if (!dragMoved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!dragMoved) viewport.classList.add("kw-dragging");
    dragMoved = true;
    tx = dragging.tx + dx;
    ty = dragging.ty + dy;
    applyTransform();
  };
  window.addEventListener("pointermove", onMove);
  const endDrag = () => {
    dragging = null;
    viewport.classList.remove("kw-dragging");
    setTimeout(() => { dragMoved = false; }, 0);
  };
  window.addEventListener("pointerup", endDrag);
  function zoomAt(factor, px, py) {
    const next = Math.max(0.03, Math.min(4, scale * factor));
    tx = px - (px - tx) * (next / scale);
    ty = py - (py - ty) * (next / scale);
    scale = next;
    applyTransform();
  }
  viewport.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = viewport.getBoundingClientRect();
    const factor = Math.exp(-e.deltaY * (e.deltaMode === 1 ? 0.05 : 0.0015));
    zoomAt(factor, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  const zoomIn = () => zoomAt(1.25, viewport.clientWidth / 2, viewport.clientHeight / 2);
  const zoomOut = () => zoomAt(0.8, viewport.clientWidth / 2, viewport.clientHeight / 2);
  mkButton("\u2922", "Fit to view (0)", fit);
  mkButton("+", "Zoom in (+)", zoomIn);
  mkButton("\u2212", "Zoom out (-)", zoomOut);
  toolbar.appendChild(status);
  // Keyboard zoom anywhere in the widget but the find box: + / - / 0 (fit).
  const zoomKeys = { "+": zoomIn, "=": zoomIn, "-": zoomOut, "_": zoomOut, "0": fit };
  root.addEventListener("keydown", (e) => {
    if (e.target === search || e.ctrlKey || e.metaKey || e.altKey) return;
    const action = zoomKeys[e.key];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    action();
  });

  // Trait -> redraw step; the same table is used to unsubscribe on teardown.
  const handlers = [
    ["change:scene", draw], ["change:heat", applyHeat], ["change:marks", applyMarks],
    ["change:selected", applySelected], ["change:theme", applyTheme],
    ["change:height", applyTheme], ["change:open_groups", onOpenGroups],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  applyTheme();
  draw();
  // The output area may have no size yet when render runs: fit once it does.
  if (!viewport.clientWidth && typeof ResizeObserver !== "undefined") {
    const ro = new ResizeObserver(() => {
      if (viewport.clientWidth) { ro.disconnect(); initialView(); }
    });
    ro.observe(viewport);
  }

  return () => {
    window.removeEventListener("pointerup", endDrag);
    window.removeEventListener("pointermove", onMove);
    for (const [event, handler] of handlers) model.off(event, handler);
  };
}

export default { render };
