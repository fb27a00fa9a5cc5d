// The kiln demo page: classify a drawing with the seed CNN (weights from `kiln train`), train a
// fresh seed CNN in the page, and run conformance cases as a kernel self-check.
// Everything that touches the GPU is async; buttons are disabled while a job runs so that calls
// on one model never overlap. `window.kiln` exposes the same jobs to the browser test.
import init, { WebKiln } from './pkg/kiln.js';

const SIDE = 28;
const CLASSES = 10;
// Ops the seed CNN and its training use: the self-check subset.
const SUBSET_OPS = new Set([
  'Conv', 'MaxPool', 'Relu', 'Flatten', 'Reshape', 'Gemm', 'MatMul', 'Add', 'Mul',
  'Softmax', 'LogSoftmax', 'SoftmaxCrossEntropyLoss', 'ReduceSum', 'ReduceMax', 'Adam', 'Graph',
]);

const $ = (id) => document.getElementById(id);
let engine = null;
let busy = false;
let casesMeta = null;

function showError(e) {
  const el = $('error');
  el.hidden = false;
  el.textContent = String(e && e.message ? e.message : e);
}

// Runs `job` with every button disabled, so GPU calls never overlap.
async function exclusive(job) {
  if (busy) throw new Error('busy: another job is running');
  busy = true;
  document.querySelectorAll('button').forEach((b) => { b.disabled = true; });
  try {
    return await job();
  } finally {
    busy = false;
    document.querySelectorAll('button').forEach((b) => { b.disabled = false; });
  }
}

// ---------- drawing pad ----------
const pad = $('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true });
let drawing = false;
let last = null;

function clearPad() {
  padCtx.fillStyle = '#000';
  padCtx.fillRect(0, 0, pad.width, pad.height);
}

function stroke(p) {
  padCtx.strokeStyle = '#fff';
  padCtx.lineWidth = 20;
  padCtx.lineCap = 'round';
  padCtx.lineJoin = 'round';
  padCtx.beginPath();
  padCtx.moveTo(last.x, last.y);
  padCtx.lineTo(p.x, p.y);
  padCtx.stroke();
  last = p;
}

function padPoint(ev) {
  const r = pad.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * pad.width / r.width, y: (ev.clientY - r.top) * pad.height / r.height };
}

// The drawing as the network sees digits: the ink's bounding box scaled into 20x20 pixels and
// centred by its centre of mass in 28x28, grey values in [0, 1] (MNIST's preprocessing).
function padPixels() {
  const { data, width, height } = padCtx.getImageData(0, 0, pad.width, pad.height);
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4] > 25) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const scale = 20 / Math.max(w, h);
  const small = document.createElement('canvas');
  small.width = SIDE; small.height = SIDE;
  const sc = small.getContext('2d', { willReadFrequently: true });
  sc.fillStyle = '#000';
  sc.fillRect(0, 0, SIDE, SIDE);
  sc.imageSmoothingEnabled = true;
  sc.imageSmoothingQuality = 'high';
  const dw = w * scale, dh = h * scale;
  sc.drawImage(pad, x0, y0, w, h, (SIDE - dw) / 2, (SIDE - dh) / 2, dw, dh);
  const img = sc.getImageData(0, 0, SIDE, SIDE).data;
  const grey = new Float32Array(SIDE * SIDE);
  let m = 0, cx = 0, cy = 0;
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = img[i * 4] / 255;
    grey[i] = v; m += v; cx += v * (i % SIDE); cy += v * Math.floor(i / SIDE);
  }
  const sx = Math.round(SIDE / 2 - 0.5 - cx / m), sy = Math.round(SIDE / 2 - 0.5 - cy / m);
  const out = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const X = x - sx, Y = y - sy;
      if (X >= 0 && X < SIDE && Y >= 0 && Y < SIDE) out[y * SIDE + x] = grey[Y * SIDE + X];
    }
  }
  return out;
}

// Shows 28x28 grey pixels on the pad, scaled up.
function showDigit(pixels) {
  const small = document.createElement('canvas');
  small.width = SIDE; small.height = SIDE;
  const sc = small.getContext('2d');
  const img = sc.createImageData(SIDE, SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = Math.round(pixels[i] * 255);
    img.data.set([v, v, v, 255], i * 4);
  }
  sc.putImageData(img, 0, 0);
  clearPad();
  padCtx.imageSmoothingEnabled = false;
  padCtx.drawImage(small, 0, 0, pad.width, pad.height);
}

// ---------- charts ----------
function drawBars(probs) {
  const c = $('bars'), g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  const bw = c.width / CLASSES, top = 12, base = c.height - 20;
  let best = 0;
  for (let k = 1; k < CLASSES; k++) if (probs[k] > probs[best]) best = k;
  g.font = '12px system-ui';
  g.textAlign = 'center';
  for (let k = 0; k < CLASSES; k++) {
    const h = (base - top) * probs[k];
    g.fillStyle = k === best ? '#2f6fdb' : '#9bb4de';
    g.fillRect(k * bw + 4, base - h, bw - 8, h);
    g.fillStyle = '#222';
    g.fillText(String(k), k * bw + bw / 2, c.height - 5);
  }
  $('prediction').textContent = `${best} (${(probs[best] * 100).toFixed(1)}%)`;
}

function drawLoss(losses) {
  const c = $('loss'), g = c.getContext('2d');
  g.clearRect(0, 0, c.width, c.height);
  if (losses.length === 0) return;
  const pad = 28, w = c.width - pad - 8, h = c.height - pad - 8;
  const max = Math.max(...losses, 1e-6);
  g.strokeStyle = '#999';
  g.beginPath(); g.moveTo(pad, 8); g.lineTo(pad, 8 + h); g.lineTo(pad + w, 8 + h); g.stroke();
  g.fillStyle = '#555';
  g.font = '11px system-ui';
  g.fillText(max.toFixed(2), 2, 14);
  g.fillText('0', 14, 8 + h);
  g.fillText('step', pad + w - 24, c.height - 6);
  g.strokeStyle = '#d9480f';
  g.lineWidth = 2;
  g.beginPath();
  losses.forEach((l, i) => {
    const x = pad + (losses.length === 1 ? 0 : (w * i) / (losses.length - 1));
    const y = 8 + h - (h * l) / max;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

// ---------- jobs ----------
let trained = false;

async function classifyPixels(pixels) {
  const useTrained = $('which').value === 'trained' && trained;
  const probs = useTrained ? await engine.classify_trained(pixels) : await engine.classify(pixels);
  drawBars(probs);
  return probs;
}

async function classifyPad() {
  const pixels = padPixels();
  // While training or a self-check runs, the drawing waits for the next stroke.
  if (pixels && !busy) await exclusive(() => classifyPixels(pixels));
}

// Classifies procedural digits (n, seed), the set the native build classifies too; shows the
// first one. Returns the labels and each image's probabilities.
async function classifyDigits(n, seed) {
  return exclusive(async () => {
    const images = WebKiln.digit_images(n, BigInt(seed));
    const labels = Array.from(WebKiln.digit_labels(n, BigInt(seed)));
    const flat = await engine.classify(images);
    const probs = [];
    for (let i = 0; i < n; i++) probs.push(Array.from(flat.slice(i * CLASSES, (i + 1) * CLASSES)));
    showDigit(images.slice(0, SIDE * SIDE));
    drawBars(probs[0]);
    return { labels, probs };
  });
}

// Trains a fresh seed CNN for `steps` steps of `batch` images. images/s counts the steps after
// the first (which compiles the pipelines); every step waits for its loss.
async function train(steps, batch) {
  return exclusive(async () => {
    engine.start_training(2048, BigInt(7), 1e-3);
    const losses = [];
    let t1 = 0;
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      losses.push(await engine.train_step(batch));
      if (s === 0) t1 = performance.now();
      const rate = s > 0 ? (batch * s) / ((performance.now() - t1) / 1000) : NaN;
      $('step').textContent = String(s + 1);
      $('loss-value').textContent = losses[s].toFixed(4);
      $('rate').textContent = Number.isFinite(rate) ? rate.toFixed(1) : '…';
      drawLoss(losses);
    }
    trained = true;
    const seconds = (performance.now() - t0) / 1000;
    const imagesPerSec = steps > 1 ? (batch * (steps - 1)) / ((performance.now() - t1) / 1000) : NaN;
    return { losses, imagesPerSec, seconds, batch, steps };
  });
}

async function loadCases() {
  if (casesMeta) return casesMeta;
  const [json, tensors] = await Promise.all([
    fetch('conformance/cases.json').then((r) => { if (!r.ok) throw new Error(`cases.json: HTTP ${r.status}`); return r.arrayBuffer(); }),
    fetch('conformance/cases.safetensors').then((r) => { if (!r.ok) throw new Error(`cases.safetensors: HTTP ${r.status}`); return r.arrayBuffer(); }),
  ]);
  const jsonBytes = new Uint8Array(json);
  engine.load_conformance(jsonBytes, new Uint8Array(tensors));
  casesMeta = JSON.parse(new TextDecoder().decode(jsonBytes)).cases;
  return casesMeta;
}

// Runs the conformance subset (or every case); returns {total, passed, failures}.
async function selfCheck(all = false) {
  return exclusive(async () => {
    const cases = (await loadCases()).filter((c) => all || SUBSET_OPS.has(c.op));
    const list = $('check-list');
    list.textContent = '';
    let passed = 0;
    const failures = [];
    const t0 = performance.now();
    for (const [i, c] of cases.entries()) {
      const v = JSON.parse(await engine.run_conformance_case(c.name));
      const li = document.createElement('li');
      li.className = v.passed ? 'pass' : 'fail';
      li.textContent = `${v.passed ? 'pass' : 'FAIL'} ${v.case}${v.passed ? '' : ': ' + v.failures.join('; ')}`;
      list.appendChild(li);
      if (v.passed) passed++; else failures.push(v);
      $('check-summary').textContent = `${i + 1}/${cases.length} run: ${passed} passed, ${failures.length} failed`;
    }
    const seconds = (performance.now() - t0) / 1000;
    $('check-summary').textContent = `${passed} passed, ${failures.length} failed (${cases.length} cases, ${seconds.toFixed(1)} s)`;
    return { total: cases.length, passed, failures, seconds };
  });
}

// Compiles every kernel's WGSL with the browser's compiler; returns {total, errors, skipped}.
// Kernels behind an optional feature compile only where the adapter has it: `enable f16;` needs
// WebGPU's 'shader-f16'; `enable wgpu_cooperative_matrix;` is a wgpu (native) extension that no
// browser has, and kiln never uses that kernel there; nor the `*_sg` subgroup builds, since
// kiln does not ask for subgroups in a browser.
async function compileShaders() {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter');
  const hasF16 = adapter.features.has('shader-f16');
  const device = await adapter.requestDevice({ requiredFeatures: hasF16 ? ['shader-f16'] : [] });
  const errors = [];
  const skipped = [];
  const shaders = JSON.parse(WebKiln.shader_sources());
  for (const [name, code] of shaders) {
    if (/^\s*enable\s+[^;]*wgpu_cooperative_matrix/m.test(code)) {
      skipped.push(`${name}: needs wgpu's native cooperative-matrix extension`);
      continue;
    }
    if (name.endsWith('_sg')) {
      skipped.push(`${name}: subgroup build for native adapters (kiln does not ask for subgroups in a browser)`);
      continue;
    }
    if (/^\s*enable\s+f16\s*;/m.test(code) && !hasF16) {
      skipped.push(`${name}: needs 'shader-f16', which this adapter lacks`);
      continue;
    }
    const info = await device.createShaderModule({ label: name, code }).getCompilationInfo();
    for (const m of info.messages) {
      if (m.type === 'error') errors.push(`${name}.wgsl:${m.lineNum}:${m.linePos}: ${m.message}`);
    }
  }
  device.destroy();
  return { total: shaders.length, errors, skipped };
}

// ---------- start ----------
async function start() {
  await init();
  engine = await WebKiln.open();
  const gpu = await navigator.gpu.requestAdapter();
  const about = gpu && gpu.info ? [gpu.info.vendor, gpu.info.architecture, gpu.info.description].filter(Boolean).join(' ') : '';
  $('adapter').textContent = `${engine.adapter()}${about ? ' — ' + about : ''}`;
  const r = await fetch('seed_cnn.safetensors');
  if (!r.ok) throw new Error(`seed_cnn.safetensors: HTTP ${r.status}`);
  const meta = JSON.parse(engine.load_checkpoint(new Uint8Array(await r.arrayBuffer())));
  $('checkpoint-info').textContent = `(checkpoint: epoch ${meta.epoch}, ${meta.notes.trained_steps ?? meta.step} steps)`;
  return { adapter: $('adapter').textContent, checkpoint: meta };
}

clearPad();
drawBars(new Array(CLASSES).fill(0));
$('prediction').textContent = '–';
pad.addEventListener('pointerdown', (ev) => { drawing = true; last = padPoint(ev); pad.setPointerCapture(ev.pointerId); stroke(last); });
pad.addEventListener('pointermove', (ev) => { if (drawing) stroke(padPoint(ev)); });
pad.addEventListener('pointerup', () => { drawing = false; classifyPad().catch(showError); });
$('clear').addEventListener('click', () => { clearPad(); drawBars(new Array(CLASSES).fill(0)); $('prediction').textContent = '–'; });
$('sample').addEventListener('click', () => {
  const seed = BigInt(Math.floor(Math.random() * 1e9));
  const px = WebKiln.digit_images(1, seed);
  showDigit(px);
  exclusive(() => classifyPixels(px)).catch(showError);
});
$('train').addEventListener('click', () => train(Number($('steps').value), Number($('batch').value)).catch(showError));
$('check').addEventListener('click', () => selfCheck(false).catch(showError));
$('check-all').addEventListener('click', () => selfCheck(true).catch(showError));

const ready = start();
ready.catch((e) => { $('adapter').textContent = 'none'; showError(e); });
window.kiln = { ready, classifyDigits, train, selfCheck, compileShaders };
