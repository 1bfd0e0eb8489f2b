// onnx_run.js - ONNX Runtime's side of tests/test_onnx.sh: an ONNX model
// written by tools/mlp2onnx.py must predict what mlp_predict predicts.
//
//   node tests/onnx_run.js MODEL.onnx PREFIX [ORT]
//
// PREFIX.in holds raw inputs and PREFIX.ref mlp.h's outputs for them (from
// `export_gen --model`): int32 rows, int32 width, then rows x width float32,
// this machine's byte order. The model runs on PREFIX.in in batches of 1000
// (MLP_ONNX_BATCH), once as written (graph optimisations off) and once as
// ONNX Runtime optimises it by default (level "all": it may fold or fuse
// nodes); each time every row's largest output must be in the same column as
// mlp.h's and every output within 1e-5 (MLP_ONNX_TOL) of it. Prints the
// largest difference; exit status 1 on a mismatch, 2 on a usage or file error.
//
// ORT is where onnxruntime-node is installed: an npm --prefix directory or
// the package's own; default $ONNXRUNTIME_NODE, then Node's usual lookup.
'use strict';
const fs = require('fs');
const path = require('path');

function fail(msg) {
    console.error('onnx_run: ' + msg);
    process.exit(2);
}

function loadOrt(where) {
    if (!where) return require('onnxruntime-node');
    const dir = path.resolve(where);
    let entry;
    try {
        entry = require.resolve('onnxruntime-node', { paths: [dir] });
    } catch (e) {
        entry = dir;  // the package directory itself
    }
    return require(entry);
}

// int32 rows, int32 width, rows x width float32, nothing more
function readMatrix(file) {
    let buf;
    try {
        buf = fs.readFileSync(file);
    } catch (e) {
        fail('cannot read ' + file + ': ' + e.message);
    }
    if (buf.length < 8) fail(file + ': ' + buf.length + ' bytes, shorter than its header');
    const bytes = new Uint8Array(buf);  // a copy of its own, 4-byte aligned
    const [rows, width] = new Int32Array(bytes.buffer, 0, 2);
    if (rows < 1 || width < 1 || buf.length !== 8 + 4 * rows * width)
        fail(file + ': ' + rows + ' x ' + width + ' floats do not make its ' + buf.length + ' bytes');
    return { rows, width, data: new Float32Array(bytes.buffer, 8, rows * width) };
}

function argmax(v, at, n) {
    let best = 0;
    for (let j = 1; j < n; j++) if (v[at + j] > v[at + best]) best = j;
    return best;
}

async function run(ort, modelPath, input, ref, level, batch, tol) {
    const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: level });
    const inName = session.inputNames[0], outName = session.outputNames[0];
    if (inName !== 'raw' || outName !== 'probs')
        fail(modelPath + ': input "' + inName + '", output "' + outName + '" (expected "raw" and "probs")');
    let worst = { d: 0, row: 0, col: 0 }, bad = 0;
    for (let r0 = 0; r0 < input.rows; r0 += batch) {
        const n = Math.min(batch, input.rows - r0);
        const x = input.data.subarray(r0 * input.width, (r0 + n) * input.width);
        const out = await session.run({ [inName]: new ort.Tensor('float32', x, [n, input.width]) });
        const p = out[outName];
        if (p.dims.length !== 2 || p.dims[0] !== n || p.dims[1] !== ref.width)
            fail(modelPath + ': output of shape [' + p.dims + '] for ' + n + ' rows, expected [' + n + ', ' + ref.width + ']');
        const w = ref.width;
        for (let i = 0; i < n; i++) {
            const r = r0 + i, a = argmax(p.data, i * w, w), b = argmax(ref.data, r * w, w);
            let rowBad = a !== b;
            for (let j = 0; j < w; j++) {
                const d = Math.abs(p.data[i * w + j] - ref.data[r * w + j]);
                if (!(d <= tol)) rowBad = true;  // NaN too
                if (!(d <= worst.d)) worst = { d, row: r, col: j };
            }
            if (rowBad && ++bad <= 5)
                console.error('onnx_run: row ' + r + ' (optimisation ' + level + '): onnx class ' + a + ', mlp.h class ' + b +
                    '; onnx [' + Array.from(p.data.subarray(i * w, i * w + w), v => v.toPrecision(9)).join(' ') +
                    '], mlp.h [' + Array.from(ref.data.subarray(r * w, r * w + w), v => v.toPrecision(9)).join(' ') + ']');
        }
    }
    if (typeof session.release === 'function') await session.release();
    return { worst, bad };
}

async function main() {
    const args = process.argv.slice(2);
    if (args.length < 2 || args.length > 3) fail('usage: node tests/onnx_run.js MODEL.onnx PREFIX [ORT]');
    const [modelPath, prefix] = args;
    const ort = loadOrt(args[2] || process.env.ONNXRUNTIME_NODE);
    const batch = parseInt(process.env.MLP_ONNX_BATCH || '1000', 10);
    const tolText = process.env.MLP_ONNX_TOL || '1e-5', tol = parseFloat(tolText);
    if (!(batch > 0) || !(tol >= 0)) fail('MLP_ONNX_BATCH must be positive and MLP_ONNX_TOL non-negative');
    const input = readMatrix(prefix + '.in'), ref = readMatrix(prefix + '.ref');
    if (input.rows !== ref.rows) fail(prefix + '.in has ' + input.rows + ' rows, .ref ' + ref.rows);
    let bad = 0;
    const diffs = [];
    for (const level of ['disabled', 'all']) {
        const r = await run(ort, modelPath, input, ref, level, batch, tol);
        if (r.bad) console.error('onnx_run: ' + r.bad + ' of ' + input.rows + ' rows differ (graph optimisation ' + level + ')');
        bad += r.bad;
        diffs.push(r.worst.d.toExponential(2) + ' (row ' + r.worst.row + ', column ' + r.worst.col + ')');
    }
    console.log('onnx_run: ' + path.basename(modelPath) + ': ' + input.rows + ' rows x ' + ref.width + ', ' +
        (bad ? 'MISMATCH' : 'same class everywhere') + '; largest difference ' + diffs[0] + ' as written, ' +
        diffs[1] + ' optimised; tolerance ' + tolText);
    process.exit(bad ? 1 : 0);
}

main().catch(e => fail(e && e.message ? e.message : String(e)));
