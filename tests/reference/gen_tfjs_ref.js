#!/usr/bin/env node
// Reference outputs of the UpscalerJS TF.js models for tests/check_nets.c,
// computed with pure-JS @tensorflow/tfjs on its CPU backend.
//
//   make models npm-ref && /usr/bin/python3 tests/reference/gen_net_fixtures.py &&
//   node tests/reference/gen_tfjs_ref.js
//
// Reads build/models/<name>/... and build/reference/kodim23_crops.safetensors
// (crops of ../shared/data/images/kodim23.png written by gen_net_fixtures.py,
// not committed) and writes tests/fixtures/nets/tfjs_<name>_x<s>.safetensors
// with "output" [1, 3, H*s, W*s] only (float32, the model's own value range).
// Metadata: "in_scale" (the model's input range: RDN models take 0..255, RRDN
// (thick) 0..1 as UpscalerJS's getESRGANModelDefinition says); "input_image"
// and "input_crop" ("x,y,w,h"): the test decodes that PNG below ../shared/data
// and feeds crop / 255 * in_scale, the input used here (the photo itself is
// never committed).
'use strict';
const fs = require('fs');
const path = require('path');
const TOP = path.resolve(__dirname, '..', '..');
const tf = require(path.join(TOP, 'build', 'npm-ref', 'node_modules', '@tensorflow', 'tfjs'));

// The custom layers as UpscalerJS's dist/*/packages/shared/src/esrgan/esrgan.js
// defines them: MultiplyBeta = x * 0.2 (the config's beta is ignored there, it is
// 0.2 in every shipped model), PixelShuffle<s>x = tf.depthToSpace(x, s, 'NHWC').
class MultiplyBeta extends tf.layers.Layer {
  constructor() { super({}); this.beta = 0.2; }
  call(inputs) { return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.beta); }
  static get className() { return 'MultiplyBeta'; }
}
tf.serialization.registerClass(MultiplyBeta);
for (const s of [2, 3, 4, 8]) {
  const C = class extends tf.layers.Layer {
    constructor() { super({}); this.scale = s; }
    computeOutputShape(sh) { return [sh[0], sh[1], sh[2], 3]; }
    call(inputs) { return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, this.scale, 'NHWC'); }
    static get className() { return `PixelShuffle${s}x`; }
  };
  tf.serialization.registerClass(C);
}

// { name: {shape, data}, ..., __metadata__: {...} }
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const hdr = JSON.parse(buf.slice(8, 8 + n).toString());
  const out = { __metadata__: hdr.__metadata__ || {} };
  for (const [k, v] of Object.entries(hdr)) {
    if (k === '__metadata__') continue;
    if (v.dtype !== 'F32') throw new Error(`${file}: ${k} is ${v.dtype}`);
    const [a, b] = v.data_offsets;
    const bytes = buf.slice(8 + n + a, 8 + n + b);
    out[k] = { shape: v.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return out;
}

function writeSafetensors(file, tensors, meta) {
  const hdr = { __metadata__: meta };
  const blobs = [];
  let off = 0;
  for (const [k, t] of Object.entries(tensors)) {
    const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    hdr[k] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + b.length] };
    blobs.push(b);
    off += b.length;
  }
  let h = JSON.stringify(hdr);
  h += ' '.repeat((8 - (h.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(h), ...blobs]));
  console.log(`wrote ${path.relative(TOP, file)} (${fs.statSync(file).size} bytes)`);
}

// model.json + shards from disk into tf.io.fromMemory (no file:// handler in pure tfjs).
async function loadModel(json) {
  const m = JSON.parse(fs.readFileSync(json));
  const dir = path.dirname(json);
  const specs = [], shards = [];
  for (const g of m.weightsManifest) {
    specs.push(...g.weights);
    for (const p of g.paths) shards.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(shards);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: specs, weightData }));
}

// [1, 3, H, W] planar <-> [1, H, W, 3] interleaved
function nchwToNhwc(t, mul) {
  const [, c, h, w] = t.shape, d = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) d[i * c + k] = t.data[k * h * w + i] * mul;
  return tf.tensor4d(d, [1, h, w, c]);
}
function nhwcToNchw(x) {
  const [, h, w, c] = x.shape, s = x.dataSync(), d = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) d[k * h * w + i] = s[i * c + k];
  return { shape: [1, c, h, w], data: d };
}

async function main() {
  await tf.setBackend('cpu');
  const cropFile = path.join(TOP, 'build/reference/kodim23_crops.safetensors');
  if (!fs.existsSync(cropFile)) throw new Error(`${cropFile} missing: run tests/reference/gen_net_fixtures.py`);
  const crops = readSafetensors(cropFile);
  const jobs = [
    ['default', 2, 'default/model.json'],
    ['esrgan-slim', 2], ['esrgan-slim', 3], ['esrgan-slim', 4], ['esrgan-slim', 8],
    ['esrgan-medium', 4], ['esrgan-thick', 4],
  ];
  for (const [name, scale, rel] of jobs) {
    const json = path.join(TOP, 'build/models', rel || `${name}/x${scale}/model.json`);
    if (!fs.existsSync(json)) throw new Error(`${json} missing: run 'make models'`);
    const model = await loadModel(json);
    const rrdn = JSON.stringify(model.toJSON(null, false)).includes('PixelShuffle');
    const inScale = rrdn ? 1 : 255;
    const key = scale === 8 ? 'crop16' : 'crop24';
    const x = nchwToNhwc(crops[key], inScale);  // crop * in_scale in float32, as the test
    const y = model.predict(x);
    const output = nhwcToNchw(y);
    writeSafetensors(path.join(TOP, `tests/fixtures/nets/tfjs_${name}_x${scale}.safetensors`),
      { output }, { model: rel || `${name}/x${scale}/model.json`, in_scale: String(inScale),
        tfjs: tf.version.tfjs, backend: tf.getBackend(),
        input_image: crops.__metadata__.input_image, input_crop: crops.__metadata__[key] });
    tf.dispose([x, y]);
    model.dispose();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
