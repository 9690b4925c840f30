// neuralab playground: the page. All training happens on the server in neuralab's engine;
// this script only sends settings and draws the snapshots it streams back.
"use strict";

const FEATURES = ["x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)"];
const REGRESSION = ["plane", "multigauss"];
const MAX_LAYERS = 8, MAX_NEURONS = 16;
const OUTPUT_GRID = 50, NEURON_GRID = 14;

const DEFAULTS = {
  dataset: "circle", noise: 0, train_ratio: 0.5, batch_size: 10, n_points: 500, seed: 0,
  features: ["x1", "x2"], hidden: [4, 2], activation: "tanh", optimizer: "sgd", lr: 0.03,
  regularization: "none", reg_rate: 0, dropout: 0, batch_norm: false, residual: false,
};

let settings = loadFromHash();
let session = null;      // {id, points}
let source = null;       // EventSource of the running session
let playing = false;
let lastSnapshot = null;
let lossHistory = [];    // [step, train, test]
let framesSeen = 0;

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ URL state
function loadFromHash() {
  const s = JSON.parse(JSON.stringify(DEFAULTS));
  const params = new URLSearchParams(location.hash.slice(1));
  for (const [k, v] of params) {
    if (!(k in DEFAULTS)) continue;
    if (k === "features") s[k] = v ? v.split(",").filter((f) => FEATURES.includes(f)) : s[k];
    else if (k === "hidden") s[k] = v ? v.split(",").map(Number).filter((n) => n >= 1 && n <= MAX_NEURONS).slice(0, MAX_LAYERS) : [];
    else if (typeof DEFAULTS[k] === "boolean") s[k] = v === "true";
    else if (typeof DEFAULTS[k] === "number") s[k] = Number(v);
    else s[k] = v;
  }
  if (!s.features.length) s.features = ["x1", "x2"];
  return s;
}

function saveToHash() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(settings)) params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  history.replaceState(null, "", "#" + params.toString());
}

// ------------------------------------------------------------------ server calls
async function api(path, options = {}) {
  const res = await fetch(path, options);
  const type = res.headers.get("content-type") || "";
  const body = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(body.error || body || res.statusText);
  return body;
}

function showMessage(text) { $("message").textContent = text || ""; }

let sessionRequest = 0;  // only the newest settings' session is kept when changes overlap

async function newSession() {
  closeStream();
  saveToHash();
  const mine = ++sessionRequest;
  try {
    const data = await api("/api/sessions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings),
    });
    if (mine !== sessionRequest) return;
    startSession(data);
    showMessage("");
  } catch (err) { showMessage(err.message); }
}

function startSession(data) {
  session = { id: data.id, points: data.points };
  settings = data.settings;
  lossHistory = [];
  syncControls();
  drawSnapshot(data.snapshot);
  $("download").href = `/api/sessions/${session.id}/model`;
  openStream();
  if (playing) control("play");
}

function openStream() {
  source = new EventSource(`/api/sessions/${session.id}/stream`);
  source.onmessage = (event) => drawSnapshot(JSON.parse(event.data));
  source.onerror = () => { /* the browser reconnects by itself */ };
}

function closeStream() { if (source) { source.close(); source = null; } }

async function control(action) {
  if (!session) return;
  try {
    const data = await api(`/api/sessions/${session.id}/control`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ action }),
    });
    if (action === "reset") lossHistory = [];
    drawSnapshot(data.snapshot);
  } catch (err) { showMessage(err.message); }
}

function setPlaying(on) {
  playing = on;
  $("play").innerHTML = on ? "&#10073;&#10073; pause" : "&#9654; play";
  control(on ? "play" : "pause");
}

// ------------------------------------------------------------------ controls
function syncControls() {
  for (const id of ["lr", "activation", "optimizer", "regularization", "reg_rate", "dropout"]) {
    const el = $(id);
    const value = String(settings[id]);
    if (![...el.options].some((o) => (o.value || o.text) === value)) el.add(new Option(value, value));
    el.value = value;
  }
  $("batch_norm").checked = settings.batch_norm;
  $("residual").checked = settings.residual;
  $("train_ratio").value = Math.round(settings.train_ratio * 100);
  $("train_ratio_val").textContent = Math.round(settings.train_ratio * 100);
  $("noise").value = Math.round(settings.noise * 100);
  $("noise_val").textContent = Math.round(settings.noise * 100);
  $("batch_size").value = settings.batch_size;
  $("batch_size_val").textContent = settings.batch_size;
  $("seed").value = settings.seed;
  for (const b of document.querySelectorAll("#datasets button"))
    b.classList.toggle("active", b.dataset.dataset === settings.dataset);
  // features
  const feats = $("features");
  feats.innerHTML = "";
  for (const f of FEATURES) {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = settings.features.includes(f); box.dataset.feature = f;
    box.addEventListener("change", () => {
      const chosen = FEATURES.filter((g) => (g === f ? box.checked : settings.features.includes(g)));
      if (!chosen.length) { box.checked = true; return; }
      settings.features = chosen; newSession();
    });
    label.append(box, " " + f);
    feats.append(label);
  }
  // per-layer neuron buttons
  const lb = $("layer-buttons");
  lb.innerHTML = "";
  settings.hidden.forEach((n, i) => {
    const div = document.createElement("div");
    div.className = "layer";
    const plus = document.createElement("button"); plus.textContent = "+"; plus.dataset.layer = i;
    const minus = document.createElement("button"); minus.textContent = "\u2212"; minus.dataset.layer = i;
    plus.className = "neuron-plus"; minus.className = "neuron-minus";
    plus.onclick = () => { if (settings.hidden[i] < MAX_NEURONS) { settings.hidden[i]++; newSession(); } };
    minus.onclick = () => { if (settings.hidden[i] > 1) { settings.hidden[i]--; newSession(); } };
    const row = document.createElement("div"); row.append(plus, minus);
    div.append(row, `${n} neurons`);
    lb.append(div);
  });
  $("layer-count").textContent = `${settings.hidden.length} hidden layer${settings.hidden.length === 1 ? "" : "s"}`;
}

function bindControls() {
  $("play").onclick = () => setPlaying(!playing);
  $("step").onclick = () => { if (playing) setPlaying(false); control("step"); };
  $("reset").onclick = () => control("reset");
  for (const b of document.querySelectorAll("#datasets button")) {
    b.onclick = () => { settings.dataset = b.dataset.dataset; newSession(); };
  }
  const numeric = { lr: Number, reg_rate: Number, dropout: Number };
  for (const id of ["lr", "activation", "optimizer", "regularization", "reg_rate", "dropout"]) {
    $(id).onchange = () => { settings[id] = numeric[id] ? numeric[id]($(id).value) : $(id).value; newSession(); };
  }
  for (const id of ["batch_norm", "residual"]) $(id).onchange = () => { settings[id] = $(id).checked; newSession(); };
  $("train_ratio").onchange = () => { settings.train_ratio = Number($("train_ratio").value) / 100; newSession(); };
  $("noise").onchange = () => { settings.noise = Number($("noise").value) / 100; newSession(); };
  $("batch_size").onchange = () => { settings.batch_size = Number($("batch_size").value); newSession(); };
  $("seed").onchange = () => { settings.seed = Math.max(0, Math.floor(Number($("seed").value) || 0)); newSession(); };
  for (const id of ["train_ratio", "noise", "batch_size"])
    $(id).oninput = () => { $(id + "_val").textContent = $(id).value; };
  $("add-layer").onclick = () => { if (settings.hidden.length < MAX_LAYERS) { settings.hidden.push(4); newSession(); } };
  $("remove-layer").onclick = () => { if (settings.hidden.length) { settings.hidden.pop(); newSession(); } };
  $("show-test").onchange = () => lastSnapshot && drawOutput(lastSnapshot);
  $("output").onclick = addPoint;
  $("upload").onchange = uploadCsv;
  $("show-code").onclick = showCode;
  $("share").onclick = async () => {
    saveToHash();
    try { await navigator.clipboard.writeText(location.href); showMessage("Link copied."); }
    catch { showMessage(location.href); }
  };
}

async function addPoint(event) {
  if (!session) return;
  const rect = $("output").getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * 12 - 6;
  const y = 6 - ((event.clientY - rect.top) / rect.height) * 12;
  const regression = session.points.regression;
  const cls = document.querySelector("input[name=click-class]:checked").value;
  const label = regression ? (cls === "1" ? 1 : -1) : Number(cls);
  try {
    const data = await api(`/api/sessions/${session.id}/points`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ x, y, label }),
    });
    session.points = data.points;
    drawSnapshot(data.snapshot);
  } catch (err) { showMessage(err.message); }
}

async function uploadCsv() {
  const file = $("upload").files[0];
  if (!file) return;
  if (file.size > 256 * 1024) { showMessage("That file is over 256 KiB."); return; }
  closeStream();
  const query = encodeURIComponent(JSON.stringify({ ...settings, dataset: undefined, n_points: undefined }));
  try {
    const data = await api(`/api/upload?settings=${query}`, {
      method: "POST", headers: { "Content-Type": "text/csv" }, body: await file.text(),
    });
    startSession(data);
    showMessage(`Loaded ${file.name}.`);
  } catch (err) { showMessage(err.message); openStream(); }
}

async function showCode() {
  if (!session) return;
  $("code").textContent = await api(`/api/sessions/${session.id}/code`);
  $("code-dialog").showModal();
}

// ------------------------------------------------------------------ drawing
function colour(v) {
  // -1 -> orange, 0 -> light grey, +1 -> blue (as TensorFlow Playground)
  const t = Math.max(-1, Math.min(1, v));
  const mid = [232, 234, 235], pos = [8, 119, 189], neg = [245, 147, 34];
  const end = t >= 0 ? pos : neg, a = Math.abs(t);
  return [0, 1, 2].map((i) => Math.round(mid[i] + (end[i] - mid[i]) * a));
}

function heatmapImage(values, size) {
  const canvas = document.createElement("canvas");
  canvas.width = size; canvas.height = size;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const [r, g, b] = colour(values[i]);
    img.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function drawSnapshot(snap) {
  if (!snap) return;
  framesSeen++;
  if (snap.diverged) {
    showMessage("Training diverged: the loss became NaN or infinite. Lower the learning rate, then press reset.");
  }
  if (snap.output) lastSnapshot = snap;
  $("step-count").textContent = snap.step;
  $("epoch-count").textContent = snap.epoch.toFixed(1);
  $("train-loss").textContent = snap.train_loss.toFixed(3);
  $("test-loss").textContent = Number.isFinite(snap.test_loss) ? snap.test_loss.toFixed(3) : "\u2013";
  const last = lossHistory[lossHistory.length - 1];
  if (!last || last[0] !== snap.step) lossHistory.push([snap.step, snap.train_loss, snap.test_loss]);
  if (lossHistory.length > 600) lossHistory = lossHistory.filter((_, i) => i % 2 === 0);
  drawLossChart();
  if (snap.output) { drawOutput(snap); drawNetwork(snap); drawGradients(snap); }
  document.body.dataset.frames = framesSeen;
}

function drawOutput(snap) {
  const canvas = $("output"), ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(heatmapImage(snap.output, OUTPUT_GRID), 0, 0, canvas.width, canvas.height);
  if (!session) return;
  const toPx = (x, y) => [((x + 6) / 12) * canvas.width, ((6 - y) / 12) * canvas.height];
  const sets = [["train", "#fff"]];
  if ($("show-test").checked) sets.push(["test", "#000"]);
  for (const [name, stroke] of sets) {
    for (const [x, y, label] of session.points[name]) {
      const [px, py] = toPx(x, y);
      const v = session.points.regression ? label : label * 2 - 1;
      const [r, g, b] = colour(v * 1.0);
      ctx.beginPath(); ctx.arc(px, py, 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${r},${g},${b})`; ctx.fill();
      ctx.strokeStyle = stroke; ctx.lineWidth = 0.8; ctx.stroke();
    }
  }
}

function drawNetwork(snap) {
  const canvas = $("network"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const columns = snap.neurons.map((layer) => layer.length).concat([1]);
  const node = 30, gapX = (canvas.width - 60 - node) / (columns.length - 1 || 1);
  const pos = columns.map((n, c) => {
    const spacing = Math.min(node + 6, (canvas.height - 20) / Math.max(n, 1));
    const top = 10 + (canvas.height - 20 - spacing * n) / 2;
    return Array.from({ length: n }, (_, j) => [30 + c * gapX, top + j * spacing]);
  });
  // weights as lines: blue positive, orange negative, thicker when larger
  snap.weights.forEach((W, l) => {
    W.forEach((row, j) => row.forEach((w, i) => {
      const a = pos[l][i], b = pos[l + 1][j];
      if (!a || !b) return;
      const [r, g, bl] = colour(Math.sign(w));
      ctx.strokeStyle = `rgba(${r},${g},${bl},0.8)`;
      ctx.lineWidth = Math.min(6, 0.3 + Math.abs(w) * 1.5);
      ctx.beginPath(); ctx.moveTo(a[0] + node, a[1] + node / 2); ctx.lineTo(b[0], b[1] + node / 2); ctx.stroke();
    }));
  });
  // one small heat map per neuron
  snap.neurons.forEach((layer, c) => layer.forEach((values, j) => {
    const [x, y] = pos[c][j];
    ctx.drawImage(heatmapImage(values, NEURON_GRID), x, y, node, node);
    ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.strokeRect(x, y, node, node);
    if (c === 0) { ctx.fillStyle = "#444"; ctx.font = "10px sans-serif"; ctx.fillText(settings.features[j] || "", 0, y + node / 2 + 3); }
  }));
  // line the per-layer +/- buttons up with their columns
  const scale = canvas.clientWidth / canvas.width;
  document.querySelectorAll("#layer-buttons .layer").forEach((el, i) => {
    if (pos[i + 1] && pos[i + 1][0]) el.style.left = `${(pos[i + 1][0][0] + node / 2) * scale - 35}px`;
  });
  const [ox, oy] = pos[pos.length - 1][0];
  ctx.drawImage(heatmapImage(snap.output, OUTPUT_GRID), ox, oy, node, node);
  ctx.strokeRect(ox, oy, node, node);
}

function drawGradients(snap) {
  const bars = $("grad-bars");
  bars.innerHTML = "";
  const norms = snap.grad_norms;
  norms.forEach((g, i) => {
    const name = i === norms.length - 1 ? "output" : `layer ${i + 1}`;
    const frac = g ? Math.max(0, Math.min(1, (Math.log10(g) + 6) / 7)) : 0;  // 1e-6 .. 10
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span>${name}</span><div class="track"><div class="fill" style="width:${(frac * 100).toFixed(1)}%"></div></div>` +
      `<span class="grad-value">${g === null ? "\u2013" : g.toExponential(2)}</span>`;
    bars.append(row);
  });
  const first = norms[0], lastNorm = norms[norms.length - 1];
  $("grad-ratio").textContent = first && lastNorm
    ? `first layer / output layer gradient: ${(first / lastNorm).toExponential(2)}` : "Press play to see gradients.";
}

function drawLossChart() {
  const canvas = $("loss-chart"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (lossHistory.length < 2) return;
  const finite = lossHistory.flatMap((h) => [h[1], h[2]]).filter(Number.isFinite);
  const max = Math.max(...finite, 1e-6);
  const n = lossHistory.length;
  [[1, "#333"], [2, "#0877bd"]].forEach(([k, colour]) => {
    ctx.strokeStyle = colour; ctx.lineWidth = 1.5; ctx.beginPath();
    lossHistory.forEach((h, i) => {
      const x = (i / (n - 1)) * canvas.width, y = canvas.height - (h[k] / max) * (canvas.height - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  });
  ctx.font = "10px sans-serif";
  ctx.fillStyle = "#333"; ctx.fillText("training", canvas.width - 90, 10);
  ctx.fillStyle = "#0877bd"; ctx.fillText("test", canvas.width - 40, 10);
}

bindControls();
syncControls();
newSession();
