/*
 * TF.js reference for bench/verify_torch_tfjs.py: runs a layers-model
 * (model.json folder) on a fixed H x W x 3 pattern with the pure-JS CPU
 * backend and writes the NHWC float32 output to a file.
 *   node tfjs_ref.js MODEL_DIR OUT.bin H W
 * The custom layers of the UpscalerJS models are registered here:
 * MultiplyBeta (x * beta) and PixelShuffle{2,3,4,8}x (depth_to_space).
 */
const tf = require('@tensorflow/tfjs');
const fs = require('fs'), path = require('path');
class MultiplyBeta extends tf.layers.Layer {
  constructor(c) { super(c); this.beta = c.beta; }
  call(x) { return tf.tidy(() => tf.mul(Array.isArray(x) ? x[0] : x, this.beta)); }
  getConfig() { return Object.assign(super.getConfig(), {beta: this.beta}); }
  static get className() { return 'MultiplyBeta'; }
}
tf.serialization.registerClass(MultiplyBeta);
for (const r of [2,3,4,8]) {
  const C = class extends tf.layers.Layer {
    constructor(c) { super(c); this.scale = r; }
    computeOutputShape(s) { return [s[0], s[1]==null?null:s[1]*r, s[2]==null?null:s[2]*r, s[3]/(r*r)]; }
    call(x) { return tf.depthToSpace(Array.isArray(x) ? x[0] : x, r, 'NHWC'); }
    static get className() { return 'PixelShuffle' + r + 'x'; }
  };
  tf.serialization.registerClass(C);
}
(async () => {
  const dir = process.argv[2];
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
  const bins = j.weightsManifest.flatMap(g => g.paths.map(p => fs.readFileSync(path.join(dir, p))));
  const buf = Buffer.concat(bins);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  const m = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: j.modelTopology, weightSpecs: j.weightsManifest.flatMap(g => g.weights), weightData: ab}));
  const H = +process.argv[4], W = +process.argv[5]; const d = new Float32Array(H*W*3);
  for (let i = 0; i < d.length; i++) d[i] = (i * 37 % 256);
  const y = m.predict(tf.tensor4d(d, [1, H, W, 3]));
  fs.writeFileSync(process.argv[3], Buffer.from((await y.data()).buffer));
  console.log(y.shape.join(','));
})();
