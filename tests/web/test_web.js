/* The page in a real browser: Debian's chromium, headless, driven by
   puppeteer-core. For the SIMD128 build and the build without it, the first
   N MNIST test digits are painted onto the drawing pad (dark on white,
   about 8 x 8 pixels per MNIST pixel, with a margin); the page's answer must equal the native
   classify's on the same picture (what the page classifies, saved as PNG) for every digit,
   and at least 97% must be right. A digit drawn with pointer strokes shows
   an answer too, and "train here" trains a network to at least 90% on its
   training digits (SIMD build). Any JavaScript error, or any request to another server
   than the page's own, fails the test. Prints the median time of one
   classification in the page.
   usage: node test_web.js URL BUILD_DIR N   (tests/test_web.sh runs it) */
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const puppeteer = require('puppeteer-core');

const [url, build, countArg] = process.argv.slice(2);
const count = Number(countArg || 200);
const out = path.join(build, 'web-test', 'png');
let failures = 0;
function fail(msg) { console.log('test_web: FAIL ' + msg); failures++; }

function readIdx(file) {
  const b = fs.readFileSync(file), n = b.readUInt32BE(4);
  return b[3] === 3 ? { n, rows: b.readUInt32BE(8), cols: b.readUInt32BE(12), data: b.subarray(16) } : { n, data: b.subarray(8) };
}

const MARGIN = 4, SIDE = 28 + 2 * MARGIN; /* MNIST digits touch their frame's edge; a pad needs room */

function median(v) { const s = [...v].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; }

async function runBuild(browser, simd, images, labels) {
  const page = await browser.newPage();
  const origin = new URL(url).origin;
  page.on('pageerror', e => fail('JavaScript error: ' + e.message));
  page.on('console', m => { if (m.type() === 'error') fail('console error: ' + m.text()); });
  page.on('request', r => { if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:')) fail('request to another server: ' + r.url()); });
  await page.goto(url + (simd ? '' : '?simd=0'), { waitUntil: 'load' });
  await page.waitForFunction('window.mlpPage && window.mlpPage.ready', { timeout: 60000 });
  const isa = await page.evaluate(() => window.mlpPage.isa());
  if (isa !== (simd ? 'wasm128' : 'scalar')) fail(`the ${simd ? 'SIMD' : 'no-SIMD'} build runs the ${isa} kernels`);
  const tag = simd ? 'simd' : 'scalar', files = [], answers = [];
  fs.mkdirSync(out, { recursive: true });
  for (let i = 0; i < count; i++) {
    const px = new Array(SIDE * SIDE).fill(0); /* the digit with a margin of MARGIN pixels */
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) px[(y + MARGIN) * SIDE + x + MARGIN] = images.data[i * 784 + y * 28 + x];
    const [digit, png] = await page.evaluate((p, side) => { window.mlpPage.paint(p, side, side); return [window.mlpPage.classify(), window.mlpPage.png()]; }, px, SIDE);
    const file = path.join(out, `${tag}-${String(i).padStart(4, '0')}.png`);
    fs.writeFileSync(file, Buffer.from(png.split(',')[1], 'base64'));
    files.push(file); answers.push(digit);
  }
  /* a digit drawn with the pointer: a stroke down the middle */
  await page.evaluate(() => window.mlpPage.clear());
  const pad = await page.$('#pad'), box = await pad.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
  await page.mouse.down();
  for (let s = 1; s <= 20; s++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.15 + 0.7 * s / 20));
  await page.mouse.up();
  await page.waitForFunction(() => document.getElementById('digit').textContent !== '', { timeout: 5000 });
  const drawn = await page.evaluate(() => document.getElementById('digit').textContent);
  const drawnPng = await page.evaluate(() => window.mlpPage.png());
  const drawnFile = path.join(out, `${tag}-stroke.png`);
  fs.writeFileSync(drawnFile, Buffer.from(drawnPng.split(',')[1], 'base64'));
  const times = await page.evaluate(() => window.mlpPage.times());
  let trained = '';
  if (simd) { /* "train here": 784-64-10 on 10,000 digits in the tab */
    await page.click('#train');
    await page.waitForFunction(() => /trained in|rror/.test(document.getElementById('trainstatus').textContent), { timeout: 300000 });
    trained = await page.evaluate(() => document.getElementById('trainstatus').textContent);
    const acc = /accuracy on its training digits ([0-9.]+)%/.exec(trained);
    if (!acc || Number(acc[1]) < 90) fail('train here: ' + trained);
  }
  await page.close();

  /* classify exits 1 when a picture holds no readable digit; such a file has
     no JSON line, and the page must have refused it too (-1) */
  const run = spawnSync(path.join(build, 'classify'), ['--json', path.join(build, 'web', 'model.mlp'), ...files, drawnFile],
                        { encoding: 'utf8', maxBuffer: 1 << 26 });
  const byFile = new Map(run.stdout.trim().split('\n').filter(l => l).map(l => { const j = JSON.parse(l); return [j.file, j.digit]; }));
  const native = [...files, drawnFile].map(f => ({ digit: byFile.has(f) ? byFile.get(f) : -1 }));
  let right = 0, differ = 0;
  for (let i = 0; i < count; i++) {
    if (native[i].digit !== answers[i]) { differ++; if (differ <= 5) fail(`${tag} digit ${i}: page says ${answers[i]}, classify says ${native[i].digit}`); }
    if (answers[i] === labels.data[i]) right++;
  }
  if (String(native[count].digit) !== drawn) fail(`${tag} pointer stroke: page says ${drawn}, classify says ${native[count].digit}`);
  console.log(`test_web: ${tag} build (${isa} kernels): ${count - differ}/${count} answers equal to native classify's, ` +
              `${right}/${count} right (${(100 * right / count).toFixed(1)}%); pointer stroke read as ${drawn}; ` +
              `one classification in the page: median ${median(times).toFixed(3)} ms over ${times.length}` +
              (trained ? '; train here: ' + trained : ''));
  if (differ) fail(`${tag}: ${differ} answer(s) differ from native classify`);
  if (right < 0.97 * count) fail(`${tag}: ${right}/${count} right, below 97%`);
  return answers;
}

(async () => {
  const mnist = path.join('data', 'mnist');
  const images = readIdx(path.join(mnist, 't10k-images-idx3-ubyte')), labels = readIdx(path.join(mnist, 't10k-labels-idx1-ubyte'));
  const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true,
                                           args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const simd = await runBuild(browser, true, images, labels);
    const scalar = await runBuild(browser, false, images, labels);
    if (simd.some((d, i) => d !== scalar[i])) fail('the SIMD and the no-SIMD builds answer differently');
  } finally {
    await browser.close();
  }
  console.log(failures ? `test_web: ${failures} failure(s)` : 'test_web: ok');
  process.exit(failures ? 1 : 0);
})().catch(e => { console.log('test_web: FAIL ' + (e.stack || e)); process.exit(1); });
