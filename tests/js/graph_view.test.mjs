// The pure parts of kerawidgets/widgets/static/graph_view.js, without a browser:
// scene indexing, fold state, keyboard-navigation and view geometry, hover card.
// Run: node --test tests/js/  (scripts/test.sh does).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const MODULE = new URL("../../kerawidgets/widgets/static/graph_view.js", import.meta.url);
const gv = await import(MODULE.href);

const box = (id, x, y, extra = {}) => ({
  id, kind: "node", x, y, w: 100, h: 44, name: id.split("/").pop(), path: id,
  class_name: "Dense", family: "dense", params: 0, trainable: true, activation: null,
  group: null, out: ["(None, 4)"], inp: ["(None, 4)"], label: id, sub: "Dense (None, 4)",
  ...extra,
});

// inp feeds an open group "blk" (a -> b) and a node "side" beside it; blk/b feeds out;
// side feeds the closed group "seq" (two layers inside). Top-down:
//
//   inp
//   [blk header]
//   blk/a    side
//   blk/b
//   out      seq
function sampleScene() {
  return {
    model: "sample", width: 360, height: 344,
    frames: [{ id: "blk", x: 0, y: 100, w: 200, h: 150, name: "blk", class_name: "Functional",
      count: 2, depth: 0, label: "blk" }],
    nodes: [
      box("out", 50, 300),
      box("seq", 250, 300, { kind: "group", name: "seq", class_name: "Sequential", count: 2,
        members: ["seq/d1", "seq/d2"] }),
      box("blk/b", 50, 200, { group: "blk", class_name: "Conv2D" }),
      box("inp", 50, 0, { class_name: "InputLayer" }),
      box("blk/a", 50, 130, { group: "blk", params: 1200 }),
      box("side", 250, 130, { params: 30 }),
    ],
    edges: [
      ["inp", "blk/a"], ["blk/a", "blk/b"], ["blk/b", "out"], ["inp", "side"], ["side", "seq"],
    ].map(([source, target]) => ({ source, target, shape: "(None, 4)", count: 1, points: [] })),
    visible: {
      "inp": "inp", "blk/a": "blk/a", "blk/b": "blk/b", "side": "side", "out": "out",
      "seq/d1": "seq", "seq/d2": "seq",
    },
    open_groups: ["blk"],
    groups: {
      blk: { name: "blk", parent: null, count: 2 },
      seq: { name: "seq", parent: null, count: 2 },
    },
    index: [
      ["inp", "inp", "InputLayer", null], ["blk/a", "a", "Dense", "blk"],
      ["blk/b", "b", "Conv2D", "blk"], ["side", "side", "Dense", null],
      ["out", "out", "Dense", null], ["seq/d1", "d1", "Dense", "seq"],
      ["seq/d2", "d2", "Dense", "seq"],
    ],
  };
}

// --- the module as anywidget loads it ---------------------------------------------------

test("the module has no imports and only a default render (anywidget loads it from its text)", () => {
  const source = readFileSync(MODULE, "utf8");
  assert.doesNotMatch(source, /^\s*import[\s{(*]/m);
  assert.equal(typeof gv.default.render, "function");
  assert.equal(gv.render, undefined); // a named `render` is anywidget's deprecated module shape
});

// --- scene indexing --------------------------------------------------------------------

test("indexScene: places, reading order, drawn edges and rows", () => {
  const index = gv.indexScene(sampleScene());
  assert.deepEqual(index.items.map((i) => i.id), ["inp", "blk/a", "side", "blk/b", "out", "seq"]);
  assert.deepEqual(index.order, ["inp", "blk", "blk/a", "side", "blk/b", "out", "seq"]);
  const header = index.places.get("blk");
  assert.deepEqual([header.x, header.y, header.w, header.h], [0, 100, 200, 22]);
  assert.equal(header.item.kind, "frame");
  assert.equal(header.item.path, "blk");
  assert.equal(header.parent, null);
  assert.equal(index.places.get("blk/a").parent, "blk");
  assert.deepEqual(index.succ.get("inp"), ["blk/a", "side"]);
  assert.deepEqual(index.pred.get("out"), ["blk/b"]);
  assert.deepEqual(index.rows.get("seq/d2"), ["seq/d2", "d2", "Dense", "seq"]);
});

test("indexScene of an empty or missing scene", () => {
  for (const scene of [undefined, {}]) {
    const index = gv.indexScene(scene);
    assert.deepEqual(index.order, []);
    assert.equal(gv.drawnAs(index, "x"), null);
    assert.equal(gv.neighbour(index, "x", "ArrowDown"), null);
  }
});

test("ancestors, framesAround, drawnAs and isBox", () => {
  const scene = sampleScene();
  scene.groups["blk/inner"] = { name: "inner", parent: "blk", count: 1 };
  scene.index.push(["blk/inner/x", "x", "Dense", "blk/inner"]);
  scene.visible["blk/inner/x"] = "blk/inner";
  const index = gv.indexScene(scene);
  assert.deepEqual(gv.ancestors(index, "blk/inner/x"), ["blk/inner", "blk"]);
  assert.deepEqual(gv.ancestors(index, "inp"), []);
  assert.deepEqual(gv.ancestors(index, "unknown"), []);
  assert.deepEqual(gv.framesAround(index, "blk/a"), ["blk"]);
  assert.deepEqual(gv.framesAround(index, "blk"), []);
  assert.equal(gv.drawnAs(index, "seq/d1"), "seq"); // folded into its closed group
  assert.equal(gv.drawnAs(index, "blk"), "blk"); // an open group's header
  assert.equal(gv.drawnAs(index, "blk/inner/x"), null); // its box is not drawn
  assert.equal(gv.drawnAs(index, null), null);
  assert.equal(gv.isBox(index, "seq"), true);
  assert.equal(gv.isBox(index, "inp"), true);
  assert.equal(gv.isBox(index, "blk"), false);
  assert.equal(gv.isBox(index, "seq/d1"), false);
});

test("findLayers matches node ids and class names, whatever the case", () => {
  const index = gv.indexScene(sampleScene());
  const ids = (q) => gv.findLayers(index, q).map((r) => r[0]);
  assert.deepEqual(ids("  BLK/ "), ["blk/a", "blk/b"]);
  assert.deepEqual(ids("conv2d"), ["blk/b"]);
  assert.deepEqual(ids("d1"), ["seq/d1"]);
  assert.deepEqual(ids("   "), []);
  assert.deepEqual(ids("nothing"), []);
  assert.deepEqual([...gv.boxesShowing(index, gv.findLayers(index, "seq/"))], ["seq"]);
});

// --- fold state --------------------------------------------------------------------------

test("toggleFold opens or closes one group and asks for a sorted list", () => {
  assert.deepEqual(gv.toggleFold(["b", "a"], "c", true), ["a", "b", "c"]);
  assert.deepEqual(gv.toggleFold(["a", "b"], "a", true), ["a", "b"]);
  assert.deepEqual(gv.toggleFold(["a", "b"], "a", false), ["b"]);
  assert.deepEqual(gv.toggleFold([], "a", false), []);
  assert.deepEqual(gv.toggleFold(undefined, "a", true), ["a"]);
  assert.deepEqual(gv.foldRequest(["b", "a", "b"]), ["a", "b"]);
});

test("revealFold opens every group around a node, keeping the open ones", () => {
  const scene = sampleScene();
  scene.groups["seq/inner"] = { name: "inner", parent: "seq", count: 1 };
  scene.index.push(["seq/inner/x", "x", "Dense", "seq/inner"]);
  const index = gv.indexScene(scene);
  assert.deepEqual(gv.revealFold(["blk"], index, "seq/inner/x"), ["blk", "seq", "seq/inner"]);
  assert.deepEqual(gv.revealFold(["blk"], index, "inp"), ["blk"]);
});

test("foldPending: a request differs from the drawn scene until its layout arrives", () => {
  const scene = sampleScene();
  assert.equal(gv.foldPending(["blk"], scene), false);
  assert.equal(gv.foldPending(["blk", "seq"], scene), true);
  assert.equal(gv.foldPending([], scene), true);
  assert.equal(gv.foldPending(undefined, {}), false);
  assert.equal(gv.sameList(["a", "b"], ["b", "a"]), false);
});

// --- keyboard navigation ----------------------------------------------------------------

test("Down and Up follow the edges, stopping at an open group's header on the way in and out", () => {
  const index = gv.indexScene(sampleScene());
  const go = (id, key) => gv.neighbour(index, id, key);
  assert.equal(go("inp", "ArrowDown"), "blk"); // entering blk: its header first
  assert.equal(go("blk", "ArrowDown"), "blk/a"); // from the header: inside
  assert.equal(go("blk/a", "ArrowDown"), "blk/b");
  assert.equal(go("blk/b", "ArrowDown"), "out"); // leaving downwards needs no stop
  assert.equal(go("side", "ArrowDown"), "seq");
  assert.equal(go("out", "ArrowUp"), "blk/b");
  assert.equal(go("blk/a", "ArrowUp"), "blk"); // leaving blk upwards: its header
  assert.equal(go("blk", "ArrowUp"), "inp"); // from the header: outside
  assert.equal(go("seq", "ArrowUp"), "side");
});

test("Left and Right go to the nearest place beside; no edge: nearest below or above", () => {
  const index = gv.indexScene(sampleScene());
  const go = (id, key) => gv.neighbour(index, id, key);
  assert.equal(go("blk/a", "ArrowRight"), "side");
  assert.equal(go("side", "ArrowLeft"), "blk/a");
  assert.equal(go("seq", "ArrowLeft"), "out");
  assert.equal(go("out", "ArrowRight"), "seq");
  assert.equal(go("inp", "ArrowLeft"), null);
  assert.equal(go("out", "ArrowDown"), null); // nothing below
  assert.equal(go("blk", "ArrowRight"), "side");
  assert.equal(go("unknown", "ArrowDown"), null);

  const loose = sampleScene();
  loose.edges = [];
  const bare = gv.indexScene(loose);
  assert.equal(gv.neighbour(bare, "inp", "ArrowDown"), "blk"); // nearest below
  assert.equal(gv.neighbour(bare, "blk/a", "ArrowUp"), "blk"); // nothing feeds it: its header
  assert.equal(gv.neighbour(bare, "blk/b", "ArrowUp"), "blk"); // even with blk/a nearer above
  assert.equal(gv.neighbour(bare, "side", "ArrowUp"), "blk"); // the header is nearer than inp
});

test("navigate: arrows, Home and End", () => {
  const index = gv.indexScene(sampleScene());
  assert.equal(gv.navigate(index, "side", "Home"), "inp");
  assert.equal(gv.navigate(index, "inp", "End"), "seq");
  assert.equal(gv.navigate(index, "inp", "ArrowDown"), "blk");
  for (const key of ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End"]) {
    assert.equal(gv.isNavigationKey(key), true, key);
  }
  for (const key of ["Enter", " ", "Tab", "a", "PageDown"]) {
    assert.equal(gv.isNavigationKey(key), false, key);
  }
});

test("nearest weighs the sideways distance three times", () => {
  const scene = { nodes: [box("from", 100, 0), box("far-below", 100, 300), box("near-aside", 300, 100)] };
  const index = gv.indexScene(scene);
  const from = index.places.get("from");
  // near-aside: 100 down, 200 aside = 700; far-below: 300 down, 0 aside = 300.
  assert.equal(gv.nearest(index, from, index.order, "ArrowDown"), "far-below");
  assert.equal(gv.nearest(index, from, ["near-aside", "missing"], "ArrowDown"), "near-aside");
  assert.equal(gv.nearest(index, from, ["from"], "ArrowDown"), null);
});

// --- view geometry ----------------------------------------------------------------------

test("fitView centres the drawing, at most 125 %", () => {
  assert.deepEqual(gv.fitView({ width: 400, height: 200 }, 880, 480), { scale: 1.25, tx: 190, ty: 115 });
  const v = gv.fitView({ width: 1960, height: 460 }, 1000, 500);
  assert.equal(v.scale, 0.5);
  assert.equal(v.tx, 10);
  assert.equal(v.ty, 135);
});

test("fitView of a tall model fits its width from the top, never a 1-pixel column", () => {
  const tall = { width: 300, height: 12000 };
  const v = gv.fitView(tall, 900, 500);
  assert.equal(v.scale, 0.8);
  assert.equal(v.ty, 20);
  assert.equal(v.tx, (900 - 300 * 0.8) / 2);
  // Wide and tall: not below 35 %.
  assert.equal(gv.fitView({ width: 4000, height: 40000 }, 900, 500).scale, 0.35);
});

test("boundView keeps some of the drawing in view, and leaves a view inside alone", () => {
  const scene = { width: 400, height: 1000 };
  const inside = { scale: 1, tx: 100, ty: -200 };
  assert.deepEqual(gv.boundView(inside, scene, 800, 500), inside);
  const away = gv.boundView({ scale: 1, tx: 5000, ty: -5000 }, scene, 800, 500);
  assert.deepEqual(away, { scale: 1, tx: 800 - 60, ty: 60 - 1000 });
  const left = gv.boundView({ scale: 0.5, tx: -5000, ty: 9000 }, scene, 800, 500);
  assert.deepEqual(left, { scale: 0.5, tx: 60 - 200, ty: 500 - 60 });
  // A drawing smaller than the margin stays whole in view.
  assert.deepEqual(gv.boundView({ scale: 1, tx: -500, ty: 0 }, { width: 30, height: 30 }, 800, 500),
    { scale: 1, tx: 0, ty: 0 });
});

test("sameStructure: the same boxes in the same places", () => {
  const a = sampleScene();
  const b = sampleScene();
  b.nodes[0].sub = "Dense (None, 8)";
  assert.ok(gv.sameStructure(a, b));
  b.nodes[0].y += 10;
  assert.ok(!gv.sameStructure(a, b));
  const c = sampleScene();
  c.height += 50;
  assert.ok(!gv.sameStructure(a, c));
  assert.ok(!gv.sameStructure({}, a));
});

test("refitView: whole when readable, else the anchor stays where it was on screen", () => {
  const small = { width: 400, height: 300 };
  assert.deepEqual(gv.refitView({ scale: 3, tx: -900, ty: -900 }, small, 800, 500, null, null),
    gv.fitView(small, 800, 500));
  const tall = { width: 400, height: 6000 };
  const view = { scale: 0.8, tx: 10, ty: -1000 };
  // A group above the anchor closed: the anchor moved up by 500 in the drawing.
  const before = { x: 100, y: 1500, w: 100, h: 44 };
  const after = { x: 100, y: 1000, w: 100, h: 44 };
  const v = gv.refitView(view, tall, 800, 500, before, after);
  assert.equal(v.scale, 0.8);
  assert.equal(v.ty, -1000 + 500 * 0.8);
  assert.equal(1000 * v.scale + v.ty, 1500 * view.scale + view.ty); // same place on screen
  // An anchor that would fall outside is centred.
  const far = { x: 100, y: 5000, w: 100, h: 44 };
  const c = gv.refitView(view, tall, 800, 500, null, far);
  assert.ok(!gv.isOutside(c, far, 800, 500));
});

test("initialView: fit when it is readable, else the top of a long model at 80 %", () => {
  const small = { width: 400, height: 200 };
  assert.deepEqual(gv.initialView(small, 880, 480), gv.fitView(small, 880, 480));
  assert.deepEqual(gv.initialView({ width: 200, height: 5000 }, 600, 400), { scale: 0.8, tx: 220, ty: 20 });
});

test("centeredOn zooms in to 80 % only from below 60 %", () => {
  const b = { x: 100, y: 100, w: 100, h: 44 };
  const v = gv.centeredOn({ scale: 0.3, tx: 0, ty: 0 }, b, 600, 400);
  assert.equal(v.scale, 0.8);
  assert.equal(v.tx, 300 - 150 * 0.8);
  assert.ok(Math.abs(v.ty - (200 - 122 * 0.8)) < 1e-9);
  assert.deepEqual(gv.centeredOn({ scale: 2, tx: 5, ty: 5 }, b, 600, 400), { scale: 2, tx: 0, ty: -44 });
});

test("isOutside: any part of the box off the viewport", () => {
  const view = { scale: 2, tx: -50, ty: 0 };
  assert.equal(gv.isOutside(view, { x: 30, y: 10, w: 100, h: 44 }, 600, 400), false);
  assert.equal(gv.isOutside(view, { x: 10, y: 10, w: 100, h: 44 }, 600, 400), true); // left
  assert.equal(gv.isOutside(view, { x: 30, y: 180, w: 100, h: 44 }, 600, 400), true); // below
});

test("zoomedAt keeps the point under the pointer still and clamps the scale", () => {
  const view = { scale: 1, tx: 30, ty: -20 };
  const world = (v, px, py) => [(px - v.tx) / v.scale, (py - v.ty) / v.scale];
  const zoomed = gv.zoomedAt(view, 1.25, 200, 150);
  assert.equal(zoomed.scale, 1.25);
  const [a, b] = [world(view, 200, 150), world(zoomed, 200, 150)];
  assert.ok(Math.abs(a[0] - b[0]) < 1e-9 && Math.abs(a[1] - b[1]) < 1e-9);
  assert.equal(gv.zoomedAt({ scale: 3.5, tx: 0, ty: 0 }, 2, 0, 0).scale, 4);
  assert.equal(gv.zoomedAt({ scale: 0.04, tx: 0, ty: 0 }, 0.5, 0, 0).scale, 0.03);
});

// --- hover card, heat, marks ----------------------------------------------------------

test("the hover card goes beside the focused place: right, else left, else below", () => {
  const rect = { left: 100, right: 200, top: 50, bottom: 94 };
  assert.deepEqual(gv.cardBeside(rect, 800, 500, 150, 100), { x: 210, y: 50 });
  assert.deepEqual(gv.cardBeside(rect, 340, 500, 150, 100), { x: 100, y: 102 }); // no room either side
  assert.deepEqual(gv.cardBeside({ left: 500, right: 600, top: 50, bottom: 94 }, 700, 500, 150, 100),
    { x: 340, y: 50 });
  assert.deepEqual(gv.cardBeside({ left: 500, right: 600, top: 450, bottom: 494 }, 700, 500, 150, 100),
    { x: 340, y: 342 });
});

test("the hover card follows the pointer and flips at the widget's edges", () => {
  assert.deepEqual(gv.cardNearPointer(100, 100, 800, 500, 150, 100), { x: 114, y: 114 });
  assert.deepEqual(gv.cardNearPointer(700, 450, 800, 500, 150, 100), { x: 540, y: 340 });
  assert.deepEqual(gv.cardNearPointer(5, 5, 100, 50, 150, 100), { x: 0, y: 0 });
});

test("cardRows for a node, a closed group and an open group", () => {
  const node = box("blk/a", 0, 0, { params: 12, activation: "relu", trainable: false,
    out: ["(None, 4)", "(None, 2)"] });
  assert.deepEqual(gv.cardRows(node, { "blk/a": 0.5 }, { "blk/a": "edited" }), [
    ["class", "Dense"], ["node", "blk/a"], ["input", "(None, 4)"], ["output", "(None, 4)"],
    ["", "(None, 2)"], ["params", "12"], ["activation", "relu"], ["trainable", "no (frozen)"],
    ["heat", "0.500"], ["mark", "edited"],
  ]);
  const group = { id: "seq", kind: "group", class_name: "Sequential", count: 2, params: 0 };
  assert.deepEqual(gv.cardRows(group, {}, {}), [
    ["group", "Sequential, 2 layers"], ["params", "0"], ["", "Enter or click to open"]]);
  const frame = gv.indexScene(sampleScene()).places.get("blk").item;
  assert.deepEqual(gv.cardRows(frame, {}, {}), [
    ["group", "Functional, 2 layers, open"], ["", "Enter or click the header to close"]]);
});

test("heat and marks of a closed group come from its members", () => {
  const group = { id: "seq", members: ["seq/d1", "seq/d2"] };
  assert.equal(gv.heatOf(group, { "seq/d1": 0.2, "seq/d2": 0.7 }), 0.7);
  assert.equal(gv.heatOf(group, { seq: 0.1, "seq/d2": 0.7 }), 0.1);
  assert.equal(gv.heatOf(group, { other: 1 }), undefined);
  assert.equal(gv.heatOf({ id: "a" }, { a: 0 }), 0);
  assert.equal(gv.markOf(group, { "seq/d2": "error" }), "error");
  assert.equal(gv.markOf({ id: "a" }, { b: "edited" }), undefined);
});

test("colours and numbers", () => {
  assert.equal(gv.heatColor(0), "rgb(255,255,255)");
  assert.equal(gv.heatColor(0.5), "rgb(253,174,97)");
  assert.equal(gv.heatColor(1), "rgb(215,48,31)");
  assert.equal(gv.heatColor(7), "rgb(215,48,31)");
  assert.equal(gv.heatColor("x"), "rgb(255,255,255)");
  assert.deepEqual([0, 950, 8200, 3.5e6].map(gv.fmtParams), ["", "950", "8.2k", "3.5M"]);
  assert.equal(gv.statusText(sampleScene()), "sample \u00b7 7 nodes \u00b7 1.2k params");
  assert.equal(gv.statusText({}), " \u00b7 0 nodes \u00b7 0 params");
});

test("a plain wheel scrolls the page, Ctrl or Cmd + wheel zooms", () => {
  assert.equal(gv.wheelAction({ deltaY: 100 }), "scroll");
  assert.equal(gv.wheelAction({ deltaY: 100, shiftKey: true }), "scroll");
  assert.equal(gv.wheelAction({ deltaY: 100, ctrlKey: true }), "zoom");
  assert.equal(gv.wheelAction({ deltaY: -3, metaKey: true }), "zoom");
  assert.ok(gv.wheelFactor({ deltaY: 100, deltaMode: 0 }) < 1);
  assert.ok(gv.wheelFactor({ deltaY: -3, deltaMode: 1 }) > 1);
  assert.match(gv.wheelHintText("MacIntel"), /^\u2318 \+ wheel/);
  assert.match(gv.wheelHintText("Linux x86_64"), /^Ctrl \+ wheel/);
});

// The cases node_metrics.py computes (tests/test_node_metrics.py checks the file against it).
const METRIC_CASES = JSON.parse(readFileSync(new URL("../metric_cases.json", import.meta.url), "utf8"));

test("metric scale, text and badges agree with node_metrics.py", () => {
  for (const c of METRIC_CASES.cases) {
    const spec = METRIC_CASES.specs[c.metric];
    const where = `${c.metric} ${c.value}`;
    assert.ok(Math.abs(gv.metricPosition(spec, c.value) - c.position) < 1e-9, where);
    assert.equal(gv.formatMetric(spec, c.value), c.text, where);
    assert.equal(gv.badgeText(spec, c.value), c.badge, where);
  }
  assert.ok(METRIC_CASES.cases.length > 20);
});

test("metric colours: sequential white to red, diverging blue-white-red", () => {
  const { movement, mean } = METRIC_CASES.specs;
  assert.equal(gv.metricColor(movement, 0.0005), "rgb(255,255,255)");
  assert.equal(gv.metricColor(movement, 5), "rgb(215,48,31)");
  assert.equal(gv.metricColor(mean, 0), "rgb(255,255,255)");
  assert.equal(gv.metricColor(mean, -2), "rgb(33,102,172)");
  assert.equal(gv.divergingColor(1), "rgb(178,24,43)");
  assert.match(gv.legendGradient(mean), /^linear-gradient\(to right, rgb\(33,102,172\) 0%/);
});

test("legend ticks: decades on a log scale, quarters otherwise", () => {
  const { movement, dead } = METRIC_CASES.specs;
  assert.deepEqual(gv.legendTicks(movement).map((t) => t[1]), ["0.1%", "1.0%", "10.0%", "100%"]);
  assert.deepEqual(gv.legendTicks(movement).map((t) => Number(t[0].toFixed(3))), [0, 0.333, 0.667, 1]);
  assert.deepEqual(gv.legendTicks(dead).map((t) => t[1]), ["0%", "25.0%", "50.0%", "75.0%", "100%"]);
});

test("colour by: options, the automatic choice, and a closed group's value", () => {
  const metrics = { movement: { ...METRIC_CASES.specs.movement, values: { a: 0.1 } },
    dead: { ...METRIC_CASES.specs.dead, values: { "seq/d1": 0.1, "seq/d2": 0.6 } } };
  assert.deepEqual(gv.colorByOptions(metrics, {}).map((o) => o[0]), ["type", "movement", "dead"]);
  assert.deepEqual(gv.colorByOptions({}, { a: 1 }).map((o) => o[0]), ["type", "heat"]);
  assert.equal(gv.activeColoring("", metrics, {}).name, "movement");
  assert.equal(gv.activeColoring("", {}, { a: 1 }).name, "heat");
  assert.equal(gv.activeColoring("", {}, {}).name, "type");
  assert.equal(gv.activeColoring("dead", metrics, {}).spec, metrics.dead);
  assert.equal(gv.activeColoring("gone", metrics, {}).name, "movement");
  assert.equal(gv.activeColoring("heat", metrics, {}).name, "movement");  // no heat set
  assert.equal(gv.activeColoring("type", metrics, {}).spec, null);
  const group = { id: "seq", members: ["seq/d1", "seq/d2"] };
  assert.equal(gv.metricValueOf(group, metrics.dead), 0.6);
  assert.equal(gv.metricValueOf({ id: "x" }, metrics.dead), undefined);
  const mean = { ...METRIC_CASES.specs.mean, values: { "seq/d1": 0.5, "seq/d2": -1.5 } };
  assert.equal(gv.metricValueOf(group, mean), -1.5);
  const rows = gv.cardRows(box("a", 0, 0), {}, {}, metrics);
  assert.deepEqual(rows[rows.length - 1], ["movement", "10.0%"]);
});

test("resizedView keeps the centre and the zoom", () => {
  assert.deepEqual(gv.resizedView({ scale: 0.8, tx: 300, ty: 20 }, 1000, 500),
    { scale: 0.8, tx: 50, ty: 20 });
});
