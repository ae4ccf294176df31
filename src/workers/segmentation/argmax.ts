/**
 * Per-pixel argmax over class logits [N, C, H, W] into uint8 masks, one per frame.
 * `modelClassOf[c]` maps the c-th logit channel (the job's class subset, in the order it was
 * fed) back to the index in `manifest.classes`, so mask values mean the same thing whatever
 * vocabulary a job used. Ties go to the lower channel, as numpy's argmax does.
 *
 * Channel-outer loop: each pass reads one contiguous H×W plane, which is far kinder to the
 * cache than striding across C for every pixel.
 */
export function argmaxMasks(
  logits: Float32Array,
  dims: readonly number[],
  modelClassOf: Uint8Array,
  /** Scratch of at least H×W floats; pass one in to avoid an allocation per batch. */
  scratch?: Float32Array,
): Buffer[] {
  if (dims.length !== 4) throw new RangeError(`logits must be [N,C,H,W], got [${dims.join(',')}]`);
  const [n, c, h, w] = dims as [number, number, number, number];
  if (c !== modelClassOf.length) throw new RangeError(`logits have ${c} classes, the job fed ${modelClassOf.length}`);
  if (c > 255) throw new RangeError('more than 255 classes do not fit a uint8 mask');
  const plane = h * w;
  if (logits.length !== n * c * plane) throw new RangeError(`logits hold ${logits.length} values, [${dims.join(',')}] needs ${n * c * plane}`);
  const best = scratch && scratch.length >= plane ? scratch : new Float32Array(plane);
  // One ArrayBuffer of its own for the whole batch (never Node's shared pool, so it can be
  // transferred between threads); each frame's mask is a view of it.
  const all = Buffer.from(new ArrayBuffer(n * plane));
  const masks: Buffer[] = [];
  for (let f = 0; f < n; f++) {
    const mask = all.subarray(f * plane, (f + 1) * plane);
    const frameBase = f * c * plane;
    best.set(logits.subarray(frameBase, frameBase + plane));
    mask.fill(modelClassOf[0]!);
    for (let k = 1; k < c; k++) {
      const channel = frameBase + k * plane;
      const value = modelClassOf[k]!;
      for (let p = 0; p < plane; p++) {
        const v = logits[channel + p]!;
        if (v > best[p]!) {
          best[p] = v;
          mask[p] = value;
        }
      }
    }
    masks.push(mask);
  }
  return masks;
}

/**
 * The same masks from the network's own class map (class-map-head.ts: uint8 [N, H, W], the
 * winning logit channel per pixel), channels mapped through `modelClassOf` as in argmaxMasks.
 * `expected` is [N, H, W] as the batch was fed.
 */
export function classMapMasks(classMap: Uint8Array, dims: readonly number[], expected: readonly [number, number, number], modelClassOf: Uint8Array): Buffer[] {
  if (dims.join('x') !== expected.join('x')) throw new RangeError(`class map is [${dims.join(',')}], the batch needs [${expected.join(',')}]`);
  // The head casts the channel index to uint8: beyond 256 channels it would wrap.
  if (modelClassOf.length > 255) throw new RangeError('more than 255 classes do not fit a uint8 mask');
  const [n, h, w] = expected;
  const plane = h * w;
  // As in argmaxMasks: one ArrayBuffer of its own, transferable between threads.
  const all = Buffer.from(new ArrayBuffer(n * plane));
  if (modelClassOf.every((value, channel) => value === channel)) all.set(classMap);
  else for (let p = 0; p < all.length; p++) all[p] = modelClassOf[classMap[p]!]!;
  return Array.from({ length: n }, (_, f) => all.subarray(f * plane, (f + 1) * plane));
}

/**
 * Mean over each frame's pixels of the winning class's softmax probability, from logits
 * [N, C, H, W]: how sure the network is of its own masks. Retrieval's guard compares it for
 * the base model and a merged adapter on a scene's first frames (see adapter-guard.ts).
 * Channel-outer like argmaxMasks: one pass for the maxima, one for the sums of exponentials.
 */
export function meanConfidence(logits: Float32Array, dims: readonly number[]): Float32Array {
  if (dims.length !== 4) throw new RangeError(`logits must be [N,C,H,W], got [${dims.join(',')}]`);
  const [n, c, h, w] = dims as [number, number, number, number];
  const plane = h * w;
  const best = new Float32Array(plane);
  const sums = new Float32Array(plane);
  const out = new Float32Array(n);
  for (let f = 0; f < n; f++) {
    const frameBase = f * c * plane;
    best.set(logits.subarray(frameBase, frameBase + plane));
    for (let k = 1; k < c; k++) {
      const channel = frameBase + k * plane;
      for (let p = 0; p < plane; p++) if (logits[channel + p]! > best[p]!) best[p] = logits[channel + p]!;
    }
    sums.fill(0);
    for (let k = 0; k < c; k++) {
      const channel = frameBase + k * plane;
      for (let p = 0; p < plane; p++) sums[p] = sums[p]! + Math.exp(logits[channel + p]! - best[p]!);
    }
    let total = 0;
    for (let p = 0; p < plane; p++) total += 1 / sums[p]!;
    out[f] = total / plane;
  }
  return out;
}
