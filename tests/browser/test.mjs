// The browser test: serves the built demo (scripts/build-web.sh) on 127.0.0.1, opens it in
// Debian's headless Chromium with WebGPU (SwiftShader here), and checks that
//   1. the page gets a WebGPU adapter (no adapter is a FAILURE, never a skip),
//   2. the in-page conformance subset passes,
//   3. the seed CNN with the shipped checkpoint classifies the procedural digits of
//      expected.json exactly as the native build does (tests/browser/main.rs writes and checks
//      that file natively),
//   4. training in the page lowers the loss,
//   5. a stroke drawn on the pad with the mouse is classified (as a 1),
// then saves a screenshot and a JSON summary (figures for the README).
//
//   node tests/browser/test.mjs [--dist target/web] [--out target/web-test] [--steps 16] [--batch 32] [--all 1]
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const dist = path.resolve(root, args.dist ?? 'target/web');
const outDir = path.resolve(root, args.out ?? 'target/web-test');
const steps = Number(args.steps ?? 16);
const batch = Number(args.batch ?? 32);
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

const failures = [];
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

// ---------- a static server on 127.0.0.1 (a secure context, so WebGPU is exposed) ----------
const types = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm',
  '.json': 'application/json', '.safetensors': 'application/octet-stream', '.png': 'image/png',
};
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  let file = path.normalize(path.join(dist, decodeURIComponent(url.pathname)));
  if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404).end('not found'); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    res.end(data);
  });
});
if (!fs.existsSync(path.join(dist, 'index.html'))) {
  console.error(`FATAL: ${dist}/index.html is missing; run scripts/build-web.sh first`);
  process.exit(1);
}
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/`;

// ---------- the browser ----------
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu',
    // No GPU here: Chromium's SwiftShader Vulkan implements WebGPU on the CPU.
    '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader',
  ],
});
const page = browser.pages()[0] ?? await browser.newPage();
page.setDefaultTimeout(0);
const consoleLines = [];
page.on('console', (m) => { consoleLines.push(`${m.type()}: ${m.text()}`); if (m.type() === 'error') console.log(`  console.error: ${m.text()}`); });
page.on('pageerror', (e) => { consoleLines.push(`pageerror: ${e.message}`); console.log(`  pageerror: ${e.message}`); });

const summary = { chromium: browser.browser()?.version() ?? null };
try {
  await page.goto(base);
  const t0 = Date.now();
  const ready = await page.evaluate(() => window.kiln.ready.then((r) => ({ ok: true, ...r }), (e) => ({ ok: false, error: String(e && e.message ? e.message : e) })));
  summary.ready = ready;
  check(ready.ok, `page opened a WebGPU adapter and loaded the checkpoint: ${ready.ok ? ready.adapter : ready.error}`);
  if (!ready.ok) throw new Error('no WebGPU adapter or checkpoint: the remaining checks cannot run');
  console.log(`  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  // 2. kernel self-check: every kernel compiles with Chrome's WGSL compiler (Tint), and the
  // conformance subset (or every case, with --all) passes in the page.
  const sh = await page.evaluate(() => window.kiln.compileShaders());
  const compiled = sh.total - sh.skipped.length;
  // Only kernels behind optional features may be left out (f16, the native-only
  // cooperative-matrix matmul, and the subgroup builds attention_sg, conv2d_sg and matmul_sg);
  // everything else kiln runs on the web must compile.
  check(
    compiled > 0 && sh.errors.length === 0 && sh.skipped.length <= 5,
    `${compiled} of ${sh.total} WGSL shader modules compile in Chromium (${sh.skipped.length} need optional features)`,
  );
  for (const e of sh.errors) console.log(`  ${e}`);
  for (const k of sh.skipped) console.log(`  skipped ${k}`);
  const conf = await page.evaluate((all) => window.kiln.selfCheck(all), Boolean(args.all));
  summary.conformance = { total: conf.total, passed: conf.passed, seconds: conf.seconds, failures: conf.failures };
  check(conf.total > 0 && conf.passed === conf.total, `in-page conformance ${args.all ? '(all cases)' : 'subset'}: ${conf.passed}/${conf.total} passed in ${conf.seconds.toFixed(1)} s`);
  for (const f of conf.failures) console.log(`  ${f.case}: ${f.failures.join('; ')}`);

  // 3. classification against the native build.
  const expected = JSON.parse(fs.readFileSync(path.join(here, 'expected.json'), 'utf8'));
  const got = await page.evaluate(([n, seed]) => window.kiln.classifyDigits(n, seed), [expected.n, expected.seed]);
  const argmax = (p) => p.reduce((b, v, k) => (v > p[b] ? k : b), 0);
  const classes = got.probs.map(argmax);
  const same = classes.length === expected.classes.length && classes.every((c, i) => c === expected.classes[i]);
  const labelsSame = got.labels.every((l, i) => l === expected.labels[i]);
  let maxDiff = 0;
  got.probs.forEach((p, i) => p.forEach((v, k) => { maxDiff = Math.max(maxDiff, Math.abs(v - expected.probs[i][k])); }));
  check(labelsSame, `the page draws the same ${expected.n} procedural digits (seed ${expected.seed}) as the native build`);
  check(same, `classes of ${expected.n} digits equal the native build's (${classes.filter((c, i) => c === got.labels[i]).length}/${expected.n} correct); max |Δp| ${maxDiff.toExponential(2)}`);
  check(maxDiff < 1e-3, `probabilities within 1e-3 of the native build's`);
  summary.classification = { n: expected.n, seed: expected.seed, sameClasses: same, maxProbDiff: maxDiff };
  if (!same) console.log(`  browser ${JSON.stringify(classes)}\n  native  ${JSON.stringify(expected.classes)}`);

  // 4. training lowers the loss.
  const tr = await page.evaluate(([s, b]) => window.kiln.train(s, b), [steps, batch]);
  const k = Math.max(1, Math.floor(tr.losses.length / 4));
  const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
  const first = mean(tr.losses.slice(0, k)), lastLoss = mean(tr.losses.slice(-k));
  check(tr.losses.every(Number.isFinite) && lastLoss < 0.8 * first,
    `in-page training lowers the loss: first ${k} steps ${first.toFixed(3)} -> last ${k} ${lastLoss.toFixed(3)}`);
  console.log(`  training: ${tr.steps} steps of ${tr.batch} in ${tr.seconds.toFixed(1)} s, ${tr.imagesPerSec.toFixed(1)} images/s (steps after the first)`);
  summary.training = tr;

  // 5. the drawing pad: a vertical stroke drawn with the mouse reads as a 1 (checkpoint model).
  await page.evaluate(() => { document.getElementById('which').value = 'checkpoint'; document.getElementById('clear').click(); });
  const box = await page.locator('#pad').boundingBox();
  await page.mouse.move(box.x + box.width * 0.52, box.y + box.height * 0.18);
  await page.mouse.down();
  for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.18 + 0.064 * k));
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById('prediction').textContent !== '–', null, { timeout: 60000 });
  const drawn = await page.locator('#prediction').textContent();
  check(drawn.startsWith('1 '), `a vertical stroke drawn on the pad is classified as 1: ${drawn}`);
  summary.drawn = drawn;
} catch (e) {
  check(false, `test aborted: ${e.message}`);
} finally {
  fs.mkdirSync(outDir, { recursive: true });
  try {
    await page.screenshot({ path: path.join(outDir, 'screenshot.png'), fullPage: true });
    console.log(`  screenshot: ${path.join(outDir, 'screenshot.png')}`);
  } catch (e) {
    check(false, `screenshot: ${e.message}`);
  }
  summary.failures = failures;
  summary.console = consoleLines.slice(-50);
  fs.writeFileSync(path.join(outDir, 'summary.json'), JSON.stringify(summary, null, 1));
  await browser.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(failures.length === 0 ? 'browser test passed' : `browser test FAILED (${failures.length})`);
process.exit(failures.length === 0 ? 0 : 1);
