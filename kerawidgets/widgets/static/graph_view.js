// kerawidgets GraphView front end: draws the scene computed in the kernel as SVG.
//
// One ES module with no imports and no build step: anywidget loads it from its
// text, so everything it needs is in this file. The first half is pure (no DOM):
// the scene contract, scene indexing, fold state, keyboard-navigation and view
// geometry, exported for tests/js/graph_view.test.mjs (`node --test`). The second
// half draws and wires the DOM around one state object (`createState`).
// Names from the model are data: only textContent is used.

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

// --- Pure: colours and numbers ---------------------------------------------------------

const HEADER_H = 22; // an open group's header: the strip that closes it and takes focus
const MAX_RESULTS = 12; // find-box results listed

/** White -> orange -> red for a value in 0..1 (the same stops as `svg.heat_color`). */
export function heatColor(v) {
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

/** A parameter count as people read it: 950, 8.2k, 3.5M ("" for none). */
export function fmtParams(n) {
  if (!n) return "";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

// --- Pure: colour by a metric (the same rules as kerawidgets/node_metrics.py) ------------

/**
 * @typedef {object} MetricSpec  One colouring of the graph (node_metrics.MetricSpec).
 * @property {string} label
 * @property {string} unit
 * @property {"log" | "linear" | "diverging"} scale
 * @property {number[]} domain
 * @property {"percent" | "number"} format
 * @property {string | null} badge
 * @property {number | null} threshold
 * @property {Object<string, number>} values
 */

/** The legacy `set_heat` values (0..1, scaled to the largest) as a metric spec. */
export const HEAT_SPEC = {
  label: "heat", unit: "relative: 1 is the largest value given to set_heat", scale: "linear",
  domain: [0, 1], format: "number", badge: null, threshold: null, values: {},
};

/** Where a value sits on a metric's colour scale, 0..1 (node_metrics.position). */
export function metricPosition(spec, value) {
  const v = Number(value);
  if (value === null || value === undefined || !Number.isFinite(v)) return 0;
  const [low, high] = spec.domain;
  let t;
  if (spec.scale === "log") {
    if (v <= low) return 0;
    t = (Math.log10(v) - Math.log10(low)) / (Math.log10(high) - Math.log10(low));
  } else {
    t = high > low ? (v - low) / (high - low) : 0;
  }
  return Math.max(0, Math.min(1, t));
}

/** Blue -> white -> red for a position in 0..1 (svg.diverging_color). */
export function divergingColor(t) {
  t = Math.max(0, Math.min(1, Number(t) || 0));
  const [a, b, u] = t <= 0.5 ? [[33, 102, 172], [255, 255, 255], t / 0.5]
    : [[255, 255, 255], [178, 24, 43], (t - 0.5) / 0.5];
  const rgb = a.map((x, j) => Math.round(x + (b[j] - x) * u));
  return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`;
}

/** The fill of a metric's value (svg.metric_color). */
export function metricColor(spec, value) {
  const t = metricPosition(spec, value);
  return spec.scale === "diverging" ? divergingColor(t) : heatColor(t);
}

/** A value as the legend and the hover card write it (node_metrics.format_value). */
export function formatMetric(spec, value) {
  const v = Number(value);
  if (value === null || value === undefined || !Number.isFinite(v)) return "n/a";
  if (spec.format === "percent") {
    const pct = v * 100;
    if (pct === 0 || Math.abs(pct) >= 100) return `${pct.toFixed(0)}%`;
    if (Math.abs(pct) >= 1) return `${pct.toFixed(1)}%`;
    return `${Number(pct.toPrecision(2))}%`;
  }
  if (v === 0 || (Math.abs(v) >= 1e-3 && Math.abs(v) < 1e3)) return String(Number(v.toPrecision(3)));
  return v.toExponential(2).replace(/e([+-])(\d)$/, "e$10$2");
}

/** The badge for a value past the metric's threshold ("42% dead"), else null. */
export function badgeText(spec, value) {
  const v = Number(value);
  if (!spec.badge || spec.threshold === null || value === null || value === undefined ||
      !Number.isFinite(v) || v < spec.threshold) return null;
  return `${Math.round(v * 100)}% ${spec.badge}`;
}

/** A box's value: its own, else a closed group's member farthest along the scale. */
export function metricValueOf(item, spec) {
  const own = spec.values[item.id];
  if (own !== undefined) return own;
  const vals = (item.members || []).filter((m) => m in spec.values).map((m) => spec.values[m]);
  if (!vals.length) return undefined;
  return spec.scale === "diverging"
    ? vals.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a)) : Math.max(...vals);
}

/** The "colour by" menu: [value, label] pairs; the layer type always, heat when set. */
export function colorByOptions(metrics, heat) {
  const out = [["type", "layer type"]];
  if (heat && Object.keys(heat).length) out.push(["heat", "heat"]);
  for (const [name, spec] of Object.entries(metrics || {})) out.push([name, spec.label]);
  return out;
}

/** What the nodes are coloured by: color_by, or for "" movement, else heat, else type. */
export function activeColoring(colorBy, metrics, heat) {
  const m = metrics || {};
  const hasHeat = Boolean(heat && Object.keys(heat).length);
  const available = colorBy === "type" || (colorBy === "heat" && hasHeat) || colorBy in m;
  const name = available && colorBy ? colorBy
    : "movement" in m ? "movement" : hasHeat ? "heat" : "type";
  if (name === "heat") return { name, spec: { ...HEAT_SPEC, values: heat } };
  return { name, spec: name in m ? m[name] : null };
}

/** The legend's labelled ticks, [position 0..1, text]: decades on a log scale, else 5 steps. */
export function legendTicks(spec) {
  const [low, high] = spec.domain;
  const ticks = [];
  if (spec.scale === "log") {
    for (let e = Math.ceil(Math.log10(low) - 1e-9); e <= Math.floor(Math.log10(high) + 1e-9); e++) {
      const v = 10 ** e;
      ticks.push([metricPosition(spec, v), formatMetric(spec, v)]);
    }
  } else {
    for (let i = 0; i <= 4; i++) {
      const v = low + ((high - low) * i) / 4;
      ticks.push([i / 4, formatMetric(spec, v)]);
    }
  }
  return ticks;
}

/** The legend bar's CSS gradient, from the same colours the nodes get. */
export function legendGradient(spec) {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) =>
    `${spec.scale === "diverging" ? divergingColor(t) : heatColor(t)} ${t * 100}%`);
  return `linear-gradient(to right, ${stops.join(", ")})`;
}

/** A box's heat: its own, else a closed group's hottest member; undefined if none. */
export function heatOf(item, heat) {
  let v = heat[item.id];
  if (v === undefined && item.members) {
    const vals = item.members.filter((m) => m in heat).map((m) => heat[m]);
    if (vals.length) v = Math.max(...vals);
  }
  return v;
}

/** A box's mark ("edited", "error"): its own, else the first marked member's. */
export function markOf(item, marks) {
  let m = marks[item.id];
  if (!m && item.members) {
    const found = item.members.find((x) => marks[x]);
    if (found) m = marks[found];
  }
  return m;
}

/** The toolbar's summary: model name, node count, parameters. */
export function statusText(scene) {
  const nLayers = (scene.index || []).length;
  const nParams = (scene.nodes || []).reduce((acc, n) => acc + (n.params || 0), 0);
  return `${scene.model || ""} \u00b7 ${nLayers} nodes \u00b7 ${fmtParams(nParams) || 0} params`;
}

/** The hover card's rows, [key, value], for a node, a closed group or an open group. */
export function cardRows(item, heat, marks, metrics = {}) {
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
  if (item.id in heat) rows.push(["heat", Number(heat[item.id]).toFixed(3)]);
  // Every metric's real value (a closed group: its member farthest along the scale).
  for (const spec of Object.values(metrics || {})) {
    const v = metricValueOf(item, spec);
    if (v !== undefined) rows.push([spec.label, formatMetric(spec, v)]);
  }
  if (marks[item.id]) rows.push(["mark", marks[item.id]]);
  return rows;
}

// --- Pure: scene indexing ------------------------------------------------------------

/**
 * Something the keyboard can reach: a node, a closed group, or an open group's header.
 * @typedef {object} Place
 * @property {string} id
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 * @property {string | null} parent  the open group it sits in
 * @property {object} item  its scene entry (a frame's with kind "frame" and path = id)
 */

/**
 * @typedef {object} SceneIndex
 * @property {Scene} scene  the scene drawn
 * @property {Array<SceneNode | SceneClosedGroup>} items  boxes top-down, then left-right
 * @property {Map<string, Place>} places  by id (a group is a closed box or an open frame, never both)
 * @property {string[]} order  places in reading order: top-down, then left-right
 * @property {Map<string, string[]>} succ  drawn edges: box id -> ids it feeds
 * @property {Map<string, string[]>} pred  box id -> ids feeding it
 * @property {Map<string, SceneIndexRow>} rows  every graph node by id
 */

/** Index a scene for drawing, navigation and search. @returns {SceneIndex} */
export function indexScene(scene) {
  const s = scene || {};
  const groups = s.groups || {};
  const places = new Map();
  for (const f of s.frames || []) {
    places.set(f.id, {
      id: f.id, x: f.x, y: f.y, w: f.w, h: HEADER_H, item: { ...f, kind: "frame", path: f.id },
      parent: groups[f.id] ? groups[f.id].parent : null,
    });
  }
  const items = (s.nodes || []).slice().sort((a, b) => (a.y - b.y) || (a.x - b.x));
  for (const item of items) {
    places.set(item.id, {
      id: item.id, x: item.x, y: item.y, w: item.w, h: item.h, item, parent: item.group || null,
    });
  }
  const order = Array.from(places.keys()).sort((a, b) => {
    const p = places.get(a), q = places.get(b);
    return (p.y - q.y) || (p.x - q.x);
  });
  const succ = new Map(), pred = new Map();
  for (const e of s.edges || []) {
    if (!succ.has(e.source)) succ.set(e.source, []);
    if (!pred.has(e.target)) pred.set(e.target, []);
    succ.get(e.source).push(e.target);
    pred.get(e.target).push(e.source);
  }
  const rows = new Map((s.index || []).map((row) => [row[0], row]));
  return { scene: s, items, places, order, succ, pred, rows };
}

/** A group and the groups around it, innermost first. */
function groupChain(groups, g) {
  const out = [];
  while (g) { out.push(g); g = groups[g] ? groups[g].parent : null; }
  return out;
}

/** The groups around a graph node, drawn or not, innermost first. */
export function ancestors(index, nodeId) {
  const row = index.rows.get(nodeId);
  return groupChain(index.scene.groups || {}, row ? row[3] : null);
}

/** The open groups around a place, innermost first. */
export function framesAround(index, id) {
  const place = index.places.get(id);
  return groupChain(index.scene.groups || {}, place ? place.parent : null);
}

/** Where a node or group id is drawn now: itself, its closed group, or null. */
export function drawnAs(index, id) {
  if (id === null || id === undefined) return null;
  if (index.places.has(id)) return id;
  const shown = (index.scene.visible || {})[id];
  return shown && index.places.has(shown) ? shown : null;
}

/** Whether id is drawn as a box of its own (a node or closed group, not a frame). */
export function isBox(index, id) {
  const place = index.places.get(id);
  return Boolean(place) && place.item.kind !== "frame";
}

/** Index rows whose node id or class name contains the query (case-insensitive). */
export function findLayers(index, query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  return (index.scene.index || []).filter((r) =>
    r[0].toLowerCase().includes(q) || r[2].toLowerCase().includes(q));
}

/** The ids of the boxes showing these index rows. */
export function boxesShowing(index, rows) {
  return new Set(rows.map((r) => (index.scene.visible || {})[r[0]]));
}

// --- Pure: fold state (which groups are open) ---------------------------------------

/** Whether two lists hold the same items in the same order. */
export function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Open groups as the kernel is asked for them: each once, sorted. */
export function foldRequest(groups) {
  return Array.from(new Set(groups)).sort();
}

/** The open groups after opening (open = true) or closing the group id. */
export function toggleFold(openGroups, id, open) {
  const current = new Set(openGroups || []);
  if (open) current.add(id); else current.delete(id);
  return foldRequest(current);
}

/** The open groups that show a node: those open now and every group around it. */
export function revealFold(openGroups, index, nodeId) {
  return foldRequest([...(openGroups || []), ...ancestors(index, nodeId)]);
}

/** Whether these open groups differ from the drawn scene's (a new layout is on its way). */
export function foldPending(openGroups, scene) {
  return !sameList(openGroups || [], (scene || {}).open_groups || []);
}

// --- Pure: keyboard navigation -------------------------------------------------------

/** The candidate place nearest to `from` in the arrow key's direction, or null. */
export function nearest(index, from, candidates, key) {
  const cx = from.x + from.w / 2, cy = from.y + from.h / 2;
  let best = null, bestScore = Infinity;
  for (const id of candidates) {
    const o = index.places.get(id);
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

/** From an open group's header: Down goes inside, Up leaves it, Left/Right go beside. */
function neighbourOfFrame(index, here, key) {
  const { id } = here;
  if (key === "ArrowDown") {
    const inside = index.order.filter((o) => o !== id && framesAround(index, o).includes(id));
    return nearest(index, here, inside, key) || nearest(index, here, index.order, key);
  }
  if (key === "ArrowUp") {
    const outside = index.order.filter((o) => !framesAround(index, o).includes(id));
    return nearest(index, here, outside, key);
  }
  return nearest(index, here, index.order, key);
}

/** Down / Up along the edges; crossing into or out of an open group stops at its header. */
function alongEdges(index, here, key) {
  const mine = framesAround(index, here.id);
  const linked = (key === "ArrowDown" ? index.succ : index.pred).get(here.id) || [];
  const steps = new Set();
  for (const other of linked) {
    if (!index.places.has(other)) continue;
    const theirs = framesAround(index, other);
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
  return nearest(index, here, Array.from(steps), key) ||
    Array.from(steps).find((x) => index.places.has(x)) || null;
}

/**
 * The place an arrow key moves to from id: Down / Up follow the edges (crossing into or
 * out of an open group passes its header); Left / Right go to the nearest place beside;
 * where no edge leads, the nearest place below / above. Null if there is none.
 */
export function neighbour(index, id, key) {
  const here = index.places.get(id);
  if (!here) return null;
  if (here.item.kind === "frame") return neighbourOfFrame(index, here, key);
  if (key === "ArrowDown" || key === "ArrowUp") {
    const step = alongEdges(index, here, key);
    if (step) return step;
  }
  return nearest(index, here, index.order, key);
}

/** Whether a key moves the keyboard between places (arrows, Home, End). */
export function isNavigationKey(key) {
  return key.startsWith("Arrow") || key === "Home" || key === "End";
}

/** Where a navigation key moves from id: a neighbour, the first or the last place. */
export function navigate(index, id, key) {
  if (key === "Home") return index.order[0];
  if (key === "End") return index.order[index.order.length - 1];
  return neighbour(index, id, key);
}

// --- Pure: view geometry (pan and zoom as scale, then translate) ----------------------

const READABLE = 0.55; // below this zoom a node's name is too small to read
const MIN_FIT = 0.35; // Fit never goes below this: a tall model is fitted by its width
const KEEP = 60; // panning keeps at least this much of the drawing (px) in view

/**
 * Fit: the whole drawing centred in a W x H viewport, at most 125 %; for a drawing too
 * tall (or too big) to show whole above 35 %, its width at 35 to 80 %, from its top
 * (a 1-pixel column of a 150-layer model helps nobody).
 */
export function fitView(scene, W, H) {
  const sw = scene.width || 0, sh = scene.height || 0;
  const full = Math.min(W / ((sw || 1) + 40), H / ((sh || 1) + 40), 1.25);
  if (full >= MIN_FIT) return { scale: full, tx: (W - sw * full) / 2, ty: (H - sh * full) / 2 };
  const scale = Math.max(MIN_FIT, Math.min(W / ((sw || 1) + 40), 0.8));
  return { scale, tx: (W - sw * scale) / 2, ty: 20 };
}

/** The view moved back so that at least KEEP px (or all) of the drawing stays in view. */
export function boundView(view, scene, W, H, keep = KEEP) {
  const cw = (scene.width || 0) * view.scale, ch = (scene.height || 0) * view.scale;
  const kx = Math.min(keep, cw, W), ky = Math.min(keep, ch, H);
  return {
    scale: view.scale,
    tx: Math.min(W - kx, Math.max(kx - cw, view.tx)),
    ty: Math.min(H - ky, Math.max(ky - ch, view.ty)),
  };
}

/** The view after the viewport's width changed from W0 to W1: the same centre, same zoom. */
export function resizedView(view, W0, W1) {
  return { scale: view.scale, tx: view.tx + (W1 - W0) / 2, ty: view.ty };
}

/** Whether two scenes draw the same boxes in the same space (only labels or shapes differ). */
export function sameStructure(a, b) {
  if (!a || !b || a.width !== b.width || a.height !== b.height) return false;
  const ids = (s) => (s.nodes || []).map((n) => `${n.id}@${n.x},${n.y}`).sort();
  return sameList(ids(a), ids(b));
}

/**
 * The view after the structure changed (a group opened or closed, a layer inserted):
 * the whole drawing if it is readable whole; else the same zoom with the anchor (the
 * group toggled, the selected node) where it was on screen, centred if it would fall
 * outside; the pan bounded. `before` / `after`: the anchor's box in each scene, or null.
 */
export function refitView(view, scene, W, H, before, after) {
  const whole = Math.min(W / ((scene.width || 1) + 40), H / ((scene.height || 1) + 40), 1.25);
  if (whole >= READABLE) return fitView(scene, W, H);
  let next = { ...view };
  if (before && after) {
    next.tx = view.tx + (before.x - after.x) * view.scale;
    next.ty = view.ty + (before.y - after.y) * view.scale;
  }
  if (after && isOutside(next, after, W, H)) next = centeredOn(next, after, W, H);
  return boundView(next, scene, W, H);
}

/** The first view: fit, or for a long model a readable zoom on its top, centred. */
export function initialView(scene, W, H) {
  const fitScale = Math.min(W / ((scene.width || 1) + 40), H / ((scene.height || 1) + 40), 1.1);
  if (fitScale >= 0.55) return fitView(scene, W, H);
  const scale = Math.min(0.8, Math.max(fitScale, W / ((scene.width || 1) + 40), 0.55));
  return { scale, tx: (W - (scene.width || 0) * scale) / 2, ty: 20 };
}

/** The view centred on a box, zoomed in to 80 % if it was below 60 %. */
export function centeredOn(view, box, W, H) {
  const scale = view.scale < 0.6 ? 0.8 : view.scale;
  return { scale, tx: W / 2 - (box.x + box.w / 2) * scale, ty: H / 2 - (box.y + box.h / 2) * scale };
}

/** Whether any part of a box is outside the W x H viewport. */
export function isOutside(view, box, W, H) {
  const x0 = box.x * view.scale + view.tx, y0 = box.y * view.scale + view.ty;
  const x1 = x0 + box.w * view.scale, y1 = y0 + box.h * view.scale;
  return x0 < 0 || y0 < 0 || x1 > W || y1 > H;
}

/** The view zoomed by a factor (kept within 3 % .. 400 %) about the point (px, py). */
export function zoomedAt(view, factor, px, py) {
  const next = Math.max(0.03, Math.min(4, view.scale * factor));
  return {
    scale: next,
    tx: px - (px - view.tx) * (next / view.scale),
    ty: py - (py - view.ty) * (next / view.scale),
  };
}

/**
 * What a wheel event over the graph does: "zoom" with Ctrl or Cmd held (as maps in
 * pages do; a trackpad pinch arrives as a wheel event with ctrlKey), else "scroll":
 * the graph leaves it to the page, so a notebook scrolls past the graph.
 */
export function wheelAction(evt) {
  return evt.ctrlKey || evt.metaKey ? "zoom" : "scroll";
}

/** The hint shown on the first plain wheel: how to zoom on this platform. */
export function wheelHintText(platform) {
  const key = /Mac|iPhone|iPad/.test(platform || "") ? "\u2318" : "Ctrl";
  return `${key} + wheel zooms the graph (or + / \u2212); the wheel alone scrolls the page`;
}

/** The zoom factor of a wheel event (lines or pixels), about 1.16 per notch. */
export function wheelFactor(evt) {
  return Math.exp(-evt.deltaY * (evt.deltaMode === 1 ? 0.05 : 0.0015));
}

/** Where the hover card goes near the pointer (px, py) in a W x H widget. */
export function cardNearPointer(px, py, W, H, tw, th) {
  let x = px + 14, y = py + 14;
  if (x + tw > W) x = Math.max(0, px - tw - 10);
  if (y + th > H) y = Math.max(0, py - th - 10);
  return { x, y };
}

/** Where the hover card goes beside a focused place (right, else left, else below). */
export function cardBeside(rect, W, H, tw, th) {
  const { left, right, top, bottom } = rect;
  let x = right + 10, y = top;
  if (x + tw > W) x = left - tw - 10;
  if (x < 0) { x = Math.max(0, Math.min(left, W - tw)); y = bottom + 8; }
  if (y + th > H) y = Math.max(0, Math.min(top - th - 8, H - th));
  return { x, y };
}

// --- DOM: building blocks ----------------------------------------------------------------

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

function toolbarButton(toolbar, label, title) {
  const b = html("button", "kw-button", toolbar);
  b.type = "button";
  b.textContent = label;
  b.title = title;
  b.setAttribute("aria-label", title);
  return b;
}

/** The find box and its result list (a combobox with a listbox). */
function buildSearch(toolbar, uid) {
  const wrap = html("div", "kw-search", toolbar);
  const search = html("input", "kw-search-input", wrap);
  search.type = "search";
  search.placeholder = "Find a layer\u2026";
  search.setAttribute("aria-label", "Find a layer");
  const results = html("ul", "kw-results", wrap);
  results.setAttribute("role", "listbox");
  results.id = `${uid}-results`;
  search.setAttribute("role", "combobox");
  search.setAttribute("aria-autocomplete", "list");
  search.setAttribute("aria-expanded", "false");
  search.setAttribute("aria-controls", results.id);
  return { search, results };
}

/** The legend box (bottom left): "Colour by" menu, colour bar, ticks and unit. */
function buildLegend(viewport, uid) {
  const legend = html("div", "kw-legend kw-legend-empty", viewport);
  const row = html("div", "kw-legend-row", legend);
  const label = html("label", "kw-legend-label", row);
  label.textContent = "Colour by";
  label.htmlFor = `${uid}-color-by`;
  const select = html("select", "kw-color-by", row);
  select.id = `${uid}-color-by`;
  const scale = html("div", "kw-legend-scale", legend);
  html("div", "kw-legend-bar", scale);
  html("div", "kw-legend-ticks", scale);
  html("div", "kw-legend-unit", scale);
  // The menu's pointer events are its own, not a pan of the graph under it.
  select.addEventListener("pointerdown", (e) => e.stopPropagation());
  return legend;
}

/** The widget's elements: toolbar (find box, zoom buttons, status), viewport, hover card. */
function buildDom(el, uid) {
  const root = html("div", "kw-graph", el);
  const toolbar = html("div", "kw-toolbar", root);
  const { search, results } = buildSearch(toolbar, uid);
  const buttons = {
    fit: toolbarButton(toolbar, "\u2922", "Fit to view (0)"),
    zoomIn: toolbarButton(toolbar, "+", "Zoom in (+)"),
    zoomOut: toolbarButton(toolbar, "\u2212", "Zoom out (-)"),
  };
  const status = html("span", "kw-status", toolbar);
  const viewport = html("div", "kw-viewport", root);
  // Shown while the kernel lays the graph out again after a group was opened or closed.
  const pendingNote = html("div", "kw-pending-note", viewport);
  pendingNote.textContent = "laying out\u2026";
  pendingNote.setAttribute("role", "status");
  pendingNote.setAttribute("aria-live", "polite");
  // Said once, on the first plain wheel over the graph (which scrolls the page instead).
  const wheelHint = html("div", "kw-wheel-hint", viewport);
  wheelHint.textContent = wheelHintText(typeof navigator === "undefined" ? "" : navigator.platform);
  wheelHint.setAttribute("role", "status");
  wheelHint.setAttribute("aria-live", "polite");
  const canvas = svg("svg", { class: "kw-svg", role: "group" }, viewport);
  const marker = svg("marker", {
    id: `${uid}-arrow`, viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  }, svg("defs", {}, canvas));
  svg("path", { d: "M0,0 L10,5 L0,10 z", class: "kw-arrowhead" }, marker);
  const world = svg("g", { class: "kw-world" }, canvas);
  const tooltip = html("div", "kw-tooltip", root);
  tooltip.setAttribute("role", "tooltip");
  const legend = buildLegend(viewport, uid);
  return { root, search, results, buttons, status, viewport, world, tooltip, wheelHint, legend };
}

/** Everything one rendered view holds; every DOM function below takes it. */
function createState(model, el) {
  const uid = `kw${++viewCounter}${Math.random().toString(36).slice(2, 7)}`;
  return {
    model,
    uid,
    dom: buildDom(el, uid),
    view: { scale: 1, tx: 0, ty: 0 },
    index: indexScene({}), // the scene drawn now
    els: new Map(), // place id -> its element (node, closed group, open group header)
    boxEls: new Map(), // box id -> its <g> (nodes and closed groups)
    pendingFocus: null, // a node to focus once the kernel's new layout shows it
    firstDraw: true,
    focusedId: null, // the last focused place (kept across redraws)
    tabStopId: null, // roving tabindex: the one element of the graph with tabindex=0
    matches: [], // find box: the matching index rows
    activeResult: -1, // the result the arrow keys are on (-1: none yet)
    drag: null, // pointer-down position and translation while panning
    dragMoved: false,
    wheelHintShown: false, // the "Ctrl + wheel zooms" hint was shown once
    toggled: null, // the group last opened or closed: the anchor of the next redraw
    revealEdited: false, // after a new structure: bring the first edited node into view
  };
}

// --- DOM: view ---------------------------------------------------------------------------

function viewportSize(state) {
  const { viewport } = state.dom;
  return [viewport.clientWidth || 600, viewport.clientHeight || 400];
}

/** The part of the viewport a fit uses: all of it but the legend's strip at the bottom. */
function fitSize(state) {
  const [W, H] = viewportSize(state);
  const { legend } = state.dom;
  const inset = legend.classList.contains("kw-legend-empty") ? 0 : legend.offsetHeight + 12;
  return [W, Math.max(H / 2, H - inset)];
}

function setView(state, view, fitted = false) {
  view = boundView(view, state.index.scene, ...viewportSize(state));
  state.view = view;
  state.fittedView = fitted ? view : null; // the view a fit made, until it is moved
  state.dom.world.setAttribute("transform", `translate(${view.tx},${view.ty}) scale(${view.scale})`);
}

/** The anchor of a redraw: the group just toggled, else the selected node, else the focus. */
function anchorOf(state) {
  return state.toggled || (state.model.get("selected") || {}).id || state.focusedId;
}

/** A place's box in a scene index, following a node into the closed group showing it. */
function placeBox(index, id) {
  const place = index.places.get(drawnAs(index, id));
  return place ? { x: place.x, y: place.y, w: place.w, h: place.h } : null;
}

function refit(state, previous) {
  const id = anchorOf(state);
  state.toggled = null;
  setView(state, refitView(state.view, state.index.scene, ...fitSize(state),
    placeBox(previous, id), placeBox(state.index, id)), true);
}

function fit(state) {
  setView(state, fitView(state.index.scene, ...fitSize(state)), true);
}

function zoomAt(state, factor, px, py) {
  setView(state, zoomedAt(state.view, factor, px, py));
}

function zoomBy(state, factor) {
  const { viewport } = state.dom;
  zoomAt(state, factor, viewport.clientWidth / 2, viewport.clientHeight / 2);
}

function centerOn(state, id) {
  const place = state.index.places.get(id);
  if (place) setView(state, centeredOn(state.view, place, ...viewportSize(state)));
}

function ensureVisible(state, id) {
  const place = state.index.places.get(id);
  if (place && isOutside(state.view, place, ...viewportSize(state))) centerOn(state, id);
}

function applyTheme(state) {
  const { model, dom } = state;
  const theme = model.get("theme");
  dom.root.classList.toggle("kw-dark", theme === "dark");
  dom.root.classList.toggle("kw-light", theme === "light");
  dom.viewport.style.height = model.get("height") || "520px";
}

// --- DOM: open groups, selection, focus -----------------------------------------------

function setPending(state, on) {
  state.dom.root.classList.toggle("kw-pending", on);
  state.dom.root.setAttribute("aria-busy", on ? "true" : "false");
}

function requestOpen(state, groups) {
  const wanted = foldRequest(groups);
  // Until the kernel's new scene arrives, say so (the old drawing stays meanwhile).
  if (foldPending(wanted, state.index.scene)) setPending(state, true);
  state.model.set("open_groups", wanted);
  state.model.save_changes();
}

function onOpenGroups(state) {
  // The kernel refused or corrected the request and the drawing already matches it.
  if (!foldPending(state.model.get("open_groups"), state.index.scene)) setPending(state, false);
}

function toggleGroup(state, id, open) {
  state.toggled = id;
  requestOpen(state, toggleFold(state.model.get("open_groups"), id, open));
}

function selectNode(state, id) {
  if (!isBox(state.index, id)) return;
  const item = state.index.places.get(id).item;
  state.model.set("selected", { id, layer: item.path || id });
  state.model.save_changes();
}

function goTo(state, id) {
  centerOn(state, id);
  selectNode(state, id);
  focusOn(state, id);
}

/** Show a node: at once if drawn, else open the groups around it and go there once drawn. */
function jumpTo(state, id) {
  const { index, model } = state;
  if (index.scene.visible && index.scene.visible[id] === id && isBox(index, id)) {
    goTo(state, id);
    return;
  }
  state.pendingFocus = id;
  requestOpen(state, revealFold(model.get("open_groups"), index, id));
}

function setTabStop(state, id) {
  const { els } = state;
  if (!els.has(id)) id = state.index.order.length ? state.index.order[0] : null;
  if (state.tabStopId !== id && els.has(state.tabStopId)) {
    els.get(state.tabStopId).setAttribute("tabindex", "-1");
  }
  state.tabStopId = id;
  if (id !== null) els.get(id).setAttribute("tabindex", "0");
}

function focusOn(state, id) {
  const el = state.els.get(id);
  if (!el) return false;
  setTabStop(state, id);
  el.focus({ preventScroll: true });
  return true;
}

function graphHasFocus(state) {
  return state.dom.world.contains(document.activeElement);
}

/** After a redraw: a pending jump, else keep the keyboard where it was, else set the tab stop. */
function restoreFocus(state, hadFocus) {
  const { index } = state;
  const selectedId = drawnAs(index, (state.model.get("selected") || {}).id);
  if (state.pendingFocus && isBox(index, state.pendingFocus)) {
    const id = state.pendingFocus;
    state.pendingFocus = null;
    goTo(state, id);
  } else if (hadFocus) {
    // Keep the keyboard where it was: the same node, the group it folded into,
    // or the header of the group that opened.
    const id = drawnAs(index, state.focusedId) || selectedId || index.order[0];
    if (id !== undefined && id !== null) {
      focusOn(state, id);
      ensureVisible(state, id);
    }
  } else {
    setTabStop(state, selectedId || drawnAs(index, state.focusedId));
  }
}

// --- DOM: hover card ---------------------------------------------------------------------

function showCard(state, item, evt) {
  const { tooltip } = state.dom;
  tooltip.replaceChildren();
  const title = html("div", "kw-tt-title", tooltip);
  title.textContent = item.path || item.name || item.id;
  const rows = cardRows(item, state.model.get("heat") || {}, state.model.get("marks") || {},
    state.model.get("metrics") || {});
  for (const [k, v] of rows) {
    const row = html("div", "kw-tt-row", tooltip);
    html("span", "kw-tt-key", row).textContent = k;
    html("span", "kw-tt-val", row).textContent = v;
  }
  tooltip.style.display = "block";
  moveCard(state, evt);
}

function placeCard(state, { x, y }) {
  state.dom.tooltip.style.left = `${x}px`;
  state.dom.tooltip.style.top = `${y}px`;
}

function moveCard(state, evt) {
  if (!evt) return;
  const { root, tooltip } = state.dom;
  const r = root.getBoundingClientRect();
  placeCard(state, cardNearPointer(evt.clientX - r.left, evt.clientY - r.top, r.width, r.height,
    tooltip.offsetWidth, tooltip.offsetHeight));
}

function hideCard(state) {
  state.dom.tooltip.style.display = "none";
}

// The hover card for keyboard users: beside the focused place, so the nodes under it stay in view.
function showCardFor(state, id) {
  const place = state.index.places.get(id);
  if (!place) return;
  const { root, tooltip } = state.dom;
  showCard(state, place.item, null);
  const box = root.getBoundingClientRect();
  const n = state.els.get(id).getBoundingClientRect();
  const rect = {
    left: n.left - box.left, right: n.right - box.left,
    top: n.top - box.top, bottom: n.bottom - box.top,
  };
  placeCard(state, cardBeside(rect, box.width, box.height, tooltip.offsetWidth, tooltip.offsetHeight));
}

// --- DOM: keyboard on the graph ------------------------------------------------------------

function onPlaceFocus(state, id) {
  state.focusedId = id;
  setTabStop(state, id);
  ensureVisible(state, id);
  showCardFor(state, id);
}

/** Enter / Space act on a place (select, open, close); arrows, Home and End move. */
function onPlaceKey(state, evt, item) {
  let next = null;
  if (evt.key === "Enter" || evt.key === " ") {
    state.focusedId = item.id;
    if (item.kind === "frame") toggleGroup(state, item.id, false);
    else if (item.kind !== "node") toggleGroup(state, item.id, true);
    else selectNode(state, item.id);
  } else if (isNavigationKey(evt.key)) {
    next = navigate(state.index, item.id, evt.key);
  } else {
    return;
  }
  // Handled here: keep the notebook's own shortcuts (arrows, Enter) out of it.
  evt.preventDefault();
  evt.stopPropagation();
  if (next) focusOn(state, next);
}

/** Focus, blur and keys of a place's element. */
function wirePlace(state, el, item) {
  el.addEventListener("keydown", (evt) => onPlaceKey(state, evt, item));
  el.addEventListener("focus", () => onPlaceFocus(state, item.id));
  el.addEventListener("blur", () => hideCard(state));
  state.els.set(item.id, el);
}

// --- DOM: drawing the scene ------------------------------------------------------------

/** An open group: its frame, and a header that closes it. */
function drawFrame(state, f, layer) {
  const g = svg("g", { class: "kw-frame", "data-group": f.id }, layer);
  svg("rect", { class: "kw-frame-body", x: f.x, y: f.y, width: f.w, height: f.h, rx: 8 }, g);
  const header = svg("g", {
    class: "kw-frame-header", tabindex: -1, role: "button",
    "aria-label": `Group ${f.name}, ${f.count} layers, open: press Enter to close`,
    "data-group": f.id,
  }, g);
  svg("rect", { class: "kw-frame-head", x: f.x, y: f.y, width: f.w, height: HEADER_H, rx: 8 }, header);
  const t = svg("text", { class: "kw-frame-label", x: f.x + 8, y: f.y + 15 }, header);
  t.textContent = f.label;
  const title = svg("title", {}, header);
  title.textContent = `${f.name} (${f.class_name}, ${f.count} layers): click to close`;
  header.addEventListener("click", (e) => {
    e.stopPropagation();
    state.focusedId = f.id;
    toggleGroup(state, f.id, false);
  });
  wirePlace(state, header, state.index.places.get(f.id).item);
}

function drawEdge(state, e, layer) {
  const d = "M" + e.points.map((p) => `${p[0]},${p[1]}`).join(" L");
  const p = svg("path", {
    class: "kw-edge", d, "marker-end": `url(#${state.uid}-arrow)`,
    "data-s": e.source, "data-t": e.target,
  }, layer);
  const title = svg("title", {}, p);
  title.textContent = e.shape + (e.count > 1 ? ` (${e.count} tensors)` : "");
}

/** The shapes of a box: body, family stripe, name, class and shape, params, frozen tag, badge. */
function drawBoxShapes(item, isGroup, g) {
  const { x, y, w, h } = item;
  // Selected: a halo around the box (edited nodes are outlined purple, without one).
  svg("rect", { class: "kw-halo", x: x - 4, y: y - 4, width: w + 8, height: h + 8, rx: 9 }, g);
  if (isGroup) svg("rect", { class: "kw-stack", x: x + 4, y: y + 4, width: w, height: h, rx: 6 }, g);
  svg("rect", { class: "kw-body", x, y, width: w, height: h, rx: 6 }, g);
  svg("rect", { class: "kw-stripe", x, y: y + 3, width: 4, height: h - 6 }, g);
  svg("text", { class: "kw-label", x: x + 10, y: y + 18 }, g).textContent = item.label;
  svg("text", { class: "kw-sub", x: x + 10, y: y + 34 }, g).textContent = item.sub;
  if (item.params) {
    svg("text", { class: "kw-params", x: x + w - 6, y: y + 18 }, g).textContent = fmtParams(item.params);
  }
  if (item.trainable === false) {
    svg("text", { class: "kw-frozen-tag", x: x + w - 6, y: y + 34 }, g).textContent = "frozen";
  }
  const badge = svg("g", { class: "kw-badge" }, g);
  svg("circle", { cx: x + w - 2, cy: y + 2, r: 7 }, badge);
  svg("text", { x: x + w - 2, y: y + 5.5 }, badge);
  // A metric past its threshold: a pill on the top edge ("42% dead"), sized when shown.
  const pill = svg("g", { class: "kw-metric-badge" }, g);
  svg("rect", { x: x + 8, y: y - 8, width: 0, height: 14, rx: 7 }, pill);
  svg("text", { x: x + 8, y: y + 2.5 }, pill);
}

/** Show or hide a box's metric badge; its pill is sized to the text. */
function setMetricBadge(g, text) {
  g.classList.toggle("kw-has-badge", Boolean(text));
  const pill = g.querySelector(".kw-metric-badge");
  const label = pill.querySelector("text");
  label.textContent = text || "";
  if (!text) return;
  const rect = pill.querySelector("rect");
  const width = 6.2 * text.length + 8;
  rect.setAttribute("width", String(width));
  label.setAttribute("x", String(Number(rect.getAttribute("x")) + width / 2));
}

/** A node or a closed group: click selects a node or opens a group; hover shows the card. */
function drawBox(state, item, layer) {
  const isGroup = item.kind !== "node";
  const fam = isGroup ? "group" : item.family;
  const g = svg("g", {
    class: `kw-node kw-fam-${fam}` + (isGroup ? " kw-closed" : "") +
      (item.trainable === false ? " kw-frozen" : ""),
    tabindex: -1, role: "button", "data-id": item.id,
  }, layer);
  g.setAttribute("aria-label", isGroup
    ? `Group ${item.name}, ${item.count} layers, press Enter to open`
    : `${item.name}, ${item.class_name}, output ${(item.out || []).join(" ")}`);
  drawBoxShapes(item, isGroup, g);
  g.addEventListener("pointerenter", (evt) => showCard(state, item, evt));
  g.addEventListener("pointermove", (evt) => moveCard(state, evt));
  g.addEventListener("pointerleave", () => hideCard(state));
  g.addEventListener("click", (evt) => {
    evt.stopPropagation();
    if (state.dragMoved) return;
    if (isGroup) { state.focusedId = item.id; toggleGroup(state, item.id, true); } else selectNode(state, item.id);
  });
  wirePlace(state, g, item);
  state.boxEls.set(item.id, g);
}

/** Draw the model's scene afresh (on every new layout), keeping the view and the keyboard. */
function draw(state) {
  const { dom } = state;
  const hadFocus = graphHasFocus(state);
  const previous = state.index;
  dom.world.replaceChildren();
  state.index = indexScene(state.model.get("scene"));
  state.els = new Map();
  state.boxEls = new Map();
  state.tabStopId = null;
  const framesLayer = svg("g", { class: "kw-frames" }, dom.world);
  const edgesLayer = svg("g", { class: "kw-edges" }, dom.world);
  const nodesLayer = svg("g", { class: "kw-nodes" }, dom.world);
  const { scene, items } = state.index;
  for (const f of scene.frames || []) drawFrame(state, f, framesLayer);
  for (const e of scene.edges || []) drawEdge(state, e, edgesLayer);
  for (const item of items) drawBox(state, item, nodesLayer);
  dom.status.textContent = statusText(scene);
  applyColoring(state);
  applyMarks(state);
  applySelected(state);
  applySearch(state);
  if (state.firstDraw) {
    state.firstDraw = false;
    setView(state, initialView(scene, ...fitSize(state)), true);
  } else if (!sameStructure(previous.scene, scene)) {
    refit(state, previous);
    state.revealEdited = true; // the next marks: keep an edited node in view
  }
  setPending(state, false);
  restoreFocus(state, hadFocus);
  requestAnimationFrame(() => {
    dom.root.dataset.painted = String(Number(dom.root.dataset.painted || 0) + 1);
  });
}

// --- DOM: heat, marks, selection (redrawn without a new layout) ----------------------

/** Fill every box by what the graph is coloured by (a metric, heat, or the layer type). */
function applyColoring(state) {
  const { model } = state;
  const metrics = model.get("metrics") || {};
  const heat = model.get("heat") || {};
  const { name, spec } = activeColoring(model.get("color_by"), metrics, heat);
  state.dom.root.dataset.colorBy = name;
  for (const [id, g] of state.boxEls) {
    const item = state.index.places.get(id).item;
    const v = spec ? metricValueOf(item, spec) : undefined;
    const body = g.querySelector(".kw-body");
    if (v === undefined) {
      g.classList.remove("kw-hot", "kw-hot-strong");
      body.style.fill = "";
      g.removeAttribute("data-heat");
      g.removeAttribute("data-value");
      setMetricBadge(g, null);
      continue;
    }
    const t = metricPosition(spec, v);
    const strength = spec.scale === "diverging" ? Math.abs(t - 0.5) * 2 : t;
    g.classList.add("kw-hot");
    g.classList.toggle("kw-hot-strong", strength > 0.72);
    body.style.fill = metricColor(spec, v);
    g.setAttribute("data-heat", t.toFixed(3));
    g.setAttribute("data-value", String(v));
    setMetricBadge(g, badgeText(spec, v));
  }
  drawLegend(state, name, spec, metrics, heat);
}

/** The legend: the "colour by" menu, the colour bar with labelled ticks, and the unit. */
function drawLegend(state, name, spec, metrics, heat) {
  const { legend } = state.dom;
  const options = colorByOptions(metrics, heat);
  const appeared = legend.classList.contains("kw-legend-empty") && options.length >= 2;
  legend.classList.toggle("kw-legend-empty", options.length < 2);
  const select = legend.querySelector("select");
  select.replaceChildren();
  for (const [value, label] of options) {
    const option = html("option", "", select);
    option.value = value;
    option.textContent = label;
  }
  select.value = name;
  const scale = legend.querySelector(".kw-legend-scale");
  scale.style.display = spec ? "" : "none";
  // The legend just appeared over a view nobody moved since it was fitted: fit above it.
  if (appeared && state.view === state.fittedView) {
    setView(state, refitView(state.view, state.index.scene, ...fitSize(state), null, null), true);
  }
  if (!spec) return;
  legend.querySelector(".kw-legend-bar").style.background = legendGradient(spec);
  const ticks = legend.querySelector(".kw-legend-ticks");
  ticks.replaceChildren();
  for (const [t, text] of legendTicks(spec)) {
    const tick = html("span", "kw-legend-tick", ticks);
    tick.style.left = `${t * 100}%`;
    tick.textContent = text;
  }
  const badge = spec.badge && spec.threshold !== null
    ? ` \u00b7 badge from ${formatMetric(spec, spec.threshold)}` : "";
  legend.querySelector(".kw-legend-unit").textContent =
    spec.unit + (spec.scale === "log" ? " (log scale)" : "") + badge;
}

/** After a structure change (an Insert), the first edited node is brought into view. */
function revealEdited(state, marks) {
  if (!state.revealEdited) return;
  const edited = Object.keys(marks).filter((id) => marks[id] === "edited")
    .map((id) => drawnAs(state.index, id)).filter((id) => id !== null);
  if (!edited.length) return;
  state.revealEdited = false;
  const sel = drawnAs(state.index, (state.model.get("selected") || {}).id);
  ensureVisible(state, edited.includes(sel) ? sel : edited[edited.length - 1]);
}

function applyMarks(state) {
  const marks = state.model.get("marks") || {};
  revealEdited(state, marks);
  for (const [id, g] of state.boxEls) {
    const m = markOf(state.index.places.get(id).item, marks);
    g.classList.toggle("kw-mark-edited", m === "edited");
    g.classList.toggle("kw-mark-error", m === "error");
    g.querySelector(".kw-badge text").textContent = m === "error" ? "!" : m === "edited" ? "\u270e" : "";
  }
}

function applySelected(state) {
  const { index } = state;
  const sel = (state.model.get("selected") || {}).id;
  const shown = sel && index.scene.visible ? index.scene.visible[sel] : null;
  for (const [id, g] of state.boxEls) {
    const on = id === sel || id === shown;
    g.classList.toggle("kw-selected", on);
    g.setAttribute("aria-pressed", on ? "true" : "false");
  }
  // Tab into the graph lands on the selection (the keyboard position wins while focused).
  if (!graphHasFocus(state) && state.boxEls.size) {
    setTabStop(state, drawnAs(index, sel) || drawnAs(index, state.focusedId));
  }
}

// --- DOM: find box -------------------------------------------------------------------------

/** Highlight the boxes showing matches and list the matches while the find box has focus. */
function applySearch(state) {
  const { search, results } = state.dom;
  const q = search.value.trim().toLowerCase();
  state.matches = findLayers(state.index, q);
  const hits = boxesShowing(state.index, state.matches);
  for (const [id, g] of state.boxEls) g.classList.toggle("kw-match", q !== "" && hits.has(id));
  results.replaceChildren();
  state.activeResult = -1;
  search.removeAttribute("aria-activedescendant");
  search.setAttribute("aria-expanded", "false");
  if (!q || document.activeElement !== search) { results.style.display = "none"; return; }
  listResults(state);
  results.style.display = "block";
  search.setAttribute("aria-expanded", "true");
}

function listResults(state) {
  const { matches, uid } = state;
  const { results } = state.dom;
  matches.slice(0, MAX_RESULTS).forEach((r, i) => {
    const li = html("li", "kw-result", results);
    li.id = `${uid}-result-${i}`;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", "false");
    html("span", "kw-result-name", li).textContent = r[0];
    html("span", "kw-result-class", li).textContent = r[2];
    li.addEventListener("mousedown", (e) => { e.preventDefault(); pick(state, r[0]); });
  });
  if (matches.length > MAX_RESULTS) {
    html("li", "kw-result kw-more", results).textContent = `\u2026 ${matches.length - MAX_RESULTS} more`;
  }
  if (!matches.length) html("li", "kw-result kw-more", results).textContent = "no layer matches";
}

function setActiveResult(state, i) {
  const { search, results } = state.dom;
  const options = results.querySelectorAll(".kw-result[role='option']");
  if (!options.length) return;
  state.activeResult = (i + options.length) % options.length;
  options.forEach((li, j) => {
    li.classList.toggle("kw-active", j === state.activeResult);
    li.setAttribute("aria-selected", j === state.activeResult ? "true" : "false");
  });
  const li = options[state.activeResult];
  search.setAttribute("aria-activedescendant", li.id);
  li.scrollIntoView({ block: "nearest" });
}

function pick(state, id) {
  state.dom.results.style.display = "none";
  jumpTo(state, id);
}

function onSearchKey(state, e) {
  const { search } = state.dom;
  const active = state.activeResult;
  let handled = true;
  if (e.key === "ArrowDown") setActiveResult(state, active + 1);
  else if (e.key === "ArrowUp") setActiveResult(state, active < 0 ? -1 : active - 1);
  else if (e.key === "Enter" && state.matches.length) {
    pick(state, state.matches[Math.max(0, Math.min(active, MAX_RESULTS - 1))][0]);
  } else if (e.key === "Escape") { search.value = ""; applySearch(state); }
  else handled = false;
  if (handled) { e.preventDefault(); e.stopPropagation(); }
}

function wireSearch(state) {
  const { search, results } = state.dom;
  search.addEventListener("input", () => applySearch(state));
  search.addEventListener("focus", () => applySearch(state));
  search.addEventListener("blur", () => { results.style.display = "none"; });
  search.addEventListener("keydown", (e) => onSearchKey(state, e));
}

// --- DOM: pan and zoom ----------------------------------------------------------------------

/** Ctrl/Cmd + wheel zooms about the pointer; a plain wheel scrolls the page (hint once). */
function onWheel(state, e) {
  if (wheelAction(e) === "scroll") {
    showWheelHint(state);
    return;
  }
  e.preventDefault();
  const r = state.dom.viewport.getBoundingClientRect();
  zoomAt(state, wheelFactor(e), e.clientX - r.left, e.clientY - r.top);
}

/** The first plain wheel over a view says how to zoom; it fades after a few seconds. */
function showWheelHint(state) {
  if (state.wheelHintShown) return;
  state.wheelHintShown = true;
  const hint = state.dom.wheelHint;
  hint.classList.add("kw-shown");
  setTimeout(() => hint.classList.remove("kw-shown"), 3500);
}

/** Drag to pan, Ctrl/Cmd + wheel to zoom; returns the teardown for the window listeners. */
function wirePanZoom(state) {
  const { viewport } = state.dom;
  viewport.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    state.drag = { x: e.clientX, y: e.clientY, tx: state.view.tx, ty: state.view.ty };
    state.dragMoved = false;
  });
  const onMove = (e) => {
    const { drag } = state;
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!state.dragMoved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!state.dragMoved) viewport.classList.add("kw-dragging");
    state.dragMoved = true;
    setView(state, { scale: state.view.scale, tx: drag.tx + dx, ty: drag.ty + dy });
  };
  const endDrag = () => {
    state.drag = null;
    viewport.classList.remove("kw-dragging");
    setTimeout(() => { state.dragMoved = false; }, 0);
  };
  window.addEventListener("pointermove", onMove);
  window.addEventListener("pointerup", endDrag);
  viewport.addEventListener("wheel", (e) => onWheel(state, e), { passive: false });
  return () => {
    window.removeEventListener("pointerup", endDrag);
    window.removeEventListener("pointermove", onMove);
  };
}

/** The toolbar's fit / zoom buttons, and + / - / 0 anywhere in the widget but the find box. */
function wireZoomControls(state) {
  const { root, search, buttons } = state.dom;
  const zoomIn = () => zoomBy(state, 1.25);
  const zoomOut = () => zoomBy(state, 0.8);
  const fitAll = () => fit(state);
  buttons.fit.addEventListener("click", fitAll);
  buttons.zoomIn.addEventListener("click", zoomIn);
  buttons.zoomOut.addEventListener("click", zoomOut);
  const zoomKeys = { "+": zoomIn, "=": zoomIn, "-": zoomOut, "_": zoomOut, "0": fitAll };
  root.addEventListener("keydown", (e) => {
    if (e.target === search || e.ctrlKey || e.metaKey || e.altKey) return;
    const action = zoomKeys[e.key];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    action();
  });
}

// --- render: anywidget's entry point -----------------------------------------------------

/** Trait -> redraw step; returns the teardown that unsubscribes them. */
function wireModel(state) {
  const { model } = state;
  const handlers = [
    ["change:scene", () => draw(state)], ["change:heat", () => applyColoring(state)],
    ["change:metrics", () => applyColoring(state)], ["change:color_by", () => applyColoring(state)],
    ["change:marks", () => applyMarks(state)], ["change:selected", () => applySelected(state)],
    ["change:theme", () => applyTheme(state)], ["change:height", () => applyTheme(state)],
    ["change:open_groups", () => onOpenGroups(state)],
  ];
  for (const [event, handler] of handlers) model.on(event, handler);
  return () => {
    for (const [event, handler] of handlers) model.off(event, handler);
  };
}

// The output area may have no size yet when render runs: fit once it does. Later
// resizes (a narrower window, the side bar opened) keep the view's centre where it was.
function watchSize(state) {
  const { viewport } = state.dom;
  if (typeof ResizeObserver === "undefined") return () => {};
  let size = [viewport.clientWidth, viewport.clientHeight];
  const ro = new ResizeObserver(() => {
    const now = [viewport.clientWidth, viewport.clientHeight];
    if (!now[0] || (now[0] === size[0] && now[1] === size[1])) return;
    if (size[0]) setView(state, resizedView(state.view, size[0], now[0]));
    else setView(state, initialView(state.index.scene, ...fitSize(state)), true);
    size = now;
  });
  ro.observe(viewport);
  return () => ro.disconnect();
}

function wireLegend(state) {
  const select = state.dom.legend.querySelector("select");
  select.addEventListener("change", () => {
    state.model.set("color_by", select.value);
    state.model.save_changes();
  });
  select.addEventListener("keydown", (e) => e.stopPropagation()); // not the zoom keys
}

function render({ model, el }) {
  const state = createState(model, el);
  wireLegend(state);
  wireSearch(state);
  const stopPanZoom = wirePanZoom(state);
  wireZoomControls(state);
  const stopModel = wireModel(state);
  applyTheme(state);
  draw(state);
  const stopWatching = watchSize(state);
  return () => {
    stopPanZoom();
    stopModel();
    stopWatching();
  };
}

// Only the default export names `render`: anywidget takes a named `render` export as
// the old, deprecated module shape.
export default { render };
