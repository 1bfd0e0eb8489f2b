/* app.js - the page: a drawing pad whose picture goes through mlp.h's
   web_classify (examples/web/mlp_web.c) on every change, a loader for .mlp
   files, and the "train here" loop. No framework, no network access but to
   this page's own server. ?simd=0 loads the build without WebAssembly SIMD. */
'use strict';

const pad = document.getElementById('pad'), ctx = pad.getContext('2d', {willReadFrequently: true});
const seen = document.getElementById('seen').getContext('2d');
const status = document.getElementById('status'), digitOut = document.getElementById('digit');
const bars = document.getElementById('bars'), msOut = document.getElementById('ms');
const simd = new URLSearchParams(location.search).get('simd') !== '0';
let M = null;          /* the WebAssembly module */
let buf = null;        /* pixels, input and probabilities, in the module's memory */
let lastMs = [];       /* inference times, for the test */
let pending = false;

function say(text) { status.textContent = text; }

function clearPad() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, pad.width, pad.height);
  digitOut.textContent = '';
  msOut.textContent = '';
  seen.clearRect(0, 0, 28, 28);
  drawBars(null, -1);
}

function drawBars(probs, best) {
  bars.textContent = '';
  for (let k = 0; k < 10; k++) {
    const p = probs ? probs[k] : 0, row = document.createElement('div'), fill = document.createElement('span');
    row.className = 'bar' + (k === best ? ' best' : '');
    row.append(k + ' ');
    fill.className = 'fill';
    fill.style.width = Math.round(p * 160) + 'px';
    row.append(fill, ' ' + (p * 100).toFixed(1) + '%');
    bars.append(row);
  }
}

/* The pad is drawn at 280 x 280 and read at half that: each pixel the
   rounded mean of a 2 x 2 block (a quarter of the pixels to preprocess,
   still five times MNIST's resolution). Gray bytes, as a PNG of it holds. */
const SHRINK = 2, W = pad.width / SHRINK, H = pad.height / SHRINK;
function padGray() {
  const img = ctx.getImageData(0, 0, pad.width, pad.height).data, g = new Uint8ClampedArray(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      let sum = 0;
      for (let dy = 0; dy < SHRINK; dy++)
        for (let dx = 0; dx < SHRINK; dx++) sum += img[4 * ((y * SHRINK + dy) * pad.width + x * SHRINK + dx)];
      g[y * W + x] = Math.round(sum / (SHRINK * SHRINK));
    }
  return g;
}

/* Into the module as classify passes a PNG: gray and alpha, byte / 255
   (in double, then rounded to float: the float quotient C computes) */
function padPixels() {
  const g = padGray(), f = new Float32Array(M.HEAPF32.buffer, buf.px, W * H * 2);
  for (let i = 0; i < W * H; i++) { f[2 * i] = g[i] / 255; f[2 * i + 1] = 1; }
}

/* The picture the page classifies, as a PNG (data: URL) */
function padPng() {
  const c = document.createElement('canvas'), g = padGray();
  c.width = W; c.height = H;
  const cc = c.getContext('2d'), im = cc.createImageData(W, H);
  for (let i = 0; i < W * H; i++) { im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = g[i]; im.data[4 * i + 3] = 255; }
  cc.putImageData(im, 0, 0);
  return c.toDataURL('image/png');
}

/* Classifies the pad now; returns the digit (-1: none) */
function classify() {
  if (!M) return -1;
  padPixels();
  const t0 = performance.now();
  const d = M._web_classify(buf.px, W, H, buf.input, buf.probs);
  lastMs.push(performance.now() - t0);
  if (d < 0) {
    digitOut.textContent = '?';
    msOut.textContent = M.UTF8ToString(M._web_error());
    drawBars(null, -1);
    return -1;
  }
  const input = new Float32Array(M.HEAPF32.buffer, buf.input, 784), probs = new Float32Array(M.HEAPF32.buffer, buf.probs, 10);
  const im = seen.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = 255 - Math.round(input[i]);
    im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v;
    im.data[4 * i + 3] = 255;
  }
  seen.putImageData(im, 0, 0);
  digitOut.textContent = String(d);
  msOut.textContent = lastMs[lastMs.length - 1].toFixed(2) + ' ms';
  drawBars(Array.from(probs), d);
  return d;
}

function classifySoon() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; classify(); });
}

/* drawing with mouse, pen or finger */
let drawing = false, last = null;
function at(e) { const r = pad.getBoundingClientRect(); return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height]; }
pad.addEventListener('pointerdown', e => { drawing = true; last = at(e); pad.setPointerCapture(e.pointerId); stroke(last); });
pad.addEventListener('pointermove', e => { if (drawing) stroke(at(e)); });
for (const ev of ['pointerup', 'pointercancel']) pad.addEventListener(ev, () => { drawing = false; last = null; });
function stroke(p) {
  ctx.strokeStyle = '#000'; ctx.lineWidth = 20; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  ctx.beginPath(); ctx.moveTo(last[0], last[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  last = p;
  classifySoon();
}
document.getElementById('clear').addEventListener('click', clearPad);

function toModule(bytes) {
  const p = M._malloc(bytes.length);
  M.HEAPU8.set(bytes, p);
  return p;
}

function loadModel(bytes, name) {
  const p = toModule(bytes), rc = M._web_load(p, bytes.length);
  M._free(p);
  if (rc !== 0) { say(name + ': ' + M.UTF8ToString(M._web_error())); return false; }
  say('model ' + name + ' (' + bytes.length + ' bytes), kernels ' + M.UTF8ToString(M._web_isa()));
  classify();
  return true;
}

document.getElementById('file').addEventListener('change', async e => {
  const f = e.target.files[0];
  if (f) loadModel(new Uint8Array(await f.arrayBuffer()), f.name);
});

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(url + ': ' + r.status);
  return new Uint8Array(await r.arrayBuffer());
}

/* train here: 784-64-10 on 10,000 digits, 3 epochs, drawn as it goes */
const curve = document.getElementById('curve').getContext('2d'), progress = document.getElementById('progress');
const trainStatus = document.getElementById('trainstatus');
let losses = [];
function drawCurve() {
  const w = curve.canvas.width, h = curve.canvas.height, top = Math.max(...losses, 0.1);
  curve.clearRect(0, 0, w, h);
  curve.strokeStyle = '#3a7bd5'; curve.beginPath();
  losses.forEach((l, i) => { const x = i * w / Math.max(losses.length - 1, 1), y = h - 4 - (h - 8) * l / top; i ? curve.lineTo(x, y) : curve.moveTo(x, y); });
  curve.stroke();
  curve.fillStyle = '#555'; curve.fillText('loss ' + (losses.length ? losses[losses.length - 1].toFixed(3) : ''), 6, 14);
}
async function trainHere() {
  const button = document.getElementById('train');
  button.disabled = true;
  trainStatus.textContent = 'fetching 10,000 training digits…';
  const images = await fetchBytes('train-images-10k'), labels = await fetchBytes('train-labels-10k');
  const pi = toModule(images), pl = toModule(labels), spec = '784-64-10';
  const ps = M._malloc(M.lengthBytesUTF8(spec) + 1);
  M.stringToUTF8(spec, ps, M.lengthBytesUTF8(spec) + 1);
  const rc = M._web_train_begin(pi, images.length, pl, labels.length, 10000, ps, 3);
  M._free(ps);
  if (rc !== 0) { trainStatus.textContent = M.UTF8ToString(M._web_error()); button.disabled = false; return; }
  losses = [];
  const t0 = performance.now();
  await new Promise(done => {
    function step() {
      const l = M._web_train(10);
      if (l < 0) { trainStatus.textContent = M.UTF8ToString(M._web_error()); return done(); }
      losses.push(l); drawCurve();
      progress.value = M._web_train_progress();
      trainStatus.textContent = 'training 784-64-10: ' + Math.round(100 * progress.value) + '%';
      if (M._web_train_done()) return done();
      setTimeout(step, 0);
    }
    step();
  });
  const acc = M._web_accuracy(pi, images.length, pl, labels.length, 10000);
  M._free(pi); M._free(pl);
  trainStatus.textContent = 'trained in ' + ((performance.now() - t0) / 1000).toFixed(1) + ' s: accuracy on its training digits ' +
                            (100 * acc).toFixed(1) + '%; your drawings now go to this network';
  button.disabled = false;
  classify();
}
document.getElementById('train').addEventListener('click', trainHere);

/* for tests: the pad and the answer, no event plumbing */
window.mlpPage = {
  ready: false, simd,
  paint(gray, w, h) {  /* w x h ink values 0..255 (MNIST: ink bright), drawn dark on the pad */
    clearPad();
    const im = ctx.createImageData(pad.width, pad.height), sx = pad.width / w, sy = pad.height / h;
    for (let y = 0; y < pad.height; y++)
      for (let x = 0; x < pad.width; x++) {
        const v = 255 - gray[Math.floor(y / sy) * w + Math.floor(x / sx)], i = 4 * (y * pad.width + x);
        im.data[i] = im.data[i + 1] = im.data[i + 2] = v; im.data[i + 3] = 255;
      }
    ctx.putImageData(im, 0, 0);
  },
  classify, clear: clearPad, png: padPng, times: () => lastMs,
  isa: () => M.UTF8ToString(M._web_isa()),
};

(async () => {
  clearPad();
  const script = document.createElement('script');
  script.src = simd ? 'mlp_web.js' : 'mlp_web_scalar.js';
  await new Promise((ok, fail) => { script.onload = ok; script.onerror = () => fail(new Error('cannot load ' + script.src)); document.head.append(script); });
  M = await MlpWeb();
  buf = { px: M._malloc(W * H * 2 * 4), input: M._malloc(784 * 4), probs: M._malloc(10 * 4) };
  try { loadModel(await fetchBytes('model.mlp'), 'model.mlp'); }
  catch (e) { say('no bundled model (' + e.message + '): load one, or train here'); }
  window.mlpPage.ready = true;
})();
