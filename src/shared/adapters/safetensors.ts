import { readFile } from 'node:fs/promises';
import { ErrorCode, ModelError } from '../errors/index.js';

/**
 * Reader (and a small writer, for tests and `adapters add`) of the safetensors format:
 * an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: {…} }`, then the
 * tensor bytes, little-endian, offsets relative to the end of the header. Only the float
 * dtypes LoRA adapters use are read; every value is widened to float32.
 */

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** A header bigger than this is refused before parsing (the reference implementation caps it at 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsTensor {
  name: string;
  /** The dtype stored in the file; `data` is always float32. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  /** Path (or label) the bytes came from; every error names it. */
  file: string;
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensor>;
}

export interface ReadSafetensorsOptions {
  /**
   * Refuse NaN and ±Inf values (a diverged training run), naming the tensor and element.
   * @defaultValue true
   */
  rejectNonFinite?: boolean;
}

function fail(file: string, message: string, cause?: unknown): never {
  throw new ModelError(ErrorCode.ADAPTER_FILE, `${file}: ${message}`, cause === undefined ? undefined : { cause });
}

/** IEEE 754 half → float. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** float → IEEE 754 half, round to nearest even (writer side, for tests and fixtures). */
function floatToHalf(value: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half += 1;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half += 1; // a carry rounds into the exponent (or to Inf)
  return sign | half;
}

function decode(dtype: SafetensorsDtype, view: DataView, count: number): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
  }
  return out;
}

/**
 * Parses safetensors bytes. Checks the header length against the buffer, the header JSON,
 * each entry's dtype, shape and offsets (inside the data section, sized as the shape says,
 * no overlaps or holes), and by default that every value is finite. Throws ModelError
 * `E_ADAPTER_FILE` naming the file and the tensor.
 */
export function parseSafetensors(bytes: Uint8Array, file: string, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const rejectNonFinite = options.rejectNonFinite ?? true;
  if (bytes.byteLength < 8) fail(file, `truncated: ${bytes.byteLength} bytes, a safetensors file starts with an 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(Math.min(MAX_HEADER_BYTES, bytes.byteLength - 8))) {
    fail(file, `header length ${headerLength} exceeds the file (${bytes.byteLength} bytes): truncated or not a safetensors file`);
  }
  const n = Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (cause) {
    fail(file, 'header is not valid UTF-8 JSON', cause);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(file, 'header is not a JSON object');

  const dataStart = 8 + n;
  const dataLength = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) fail(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (typeof raw !== 'object' || raw === null) fail(file, `${where}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof dtype !== 'string') fail(file, `${where}: missing dtype`);
    if (!(dtype in BYTES_PER_ELEMENT)) fail(file, `${where}: dtype ${dtype} is not supported (F32, F16 or BF16)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `${where}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      fail(file, `${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    const dt = dtype as SafetensorsDtype;
    const elements = (shape as number[]).reduce((a, b) => a * b, 1);
    if (end > dataLength) fail(file, `${where}: data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes): file truncated`);
    if (end - begin !== elements * BYTES_PER_ELEMENT[dt]) {
      fail(file, `${where}: ${end - begin} bytes for shape [${(shape as number[]).join(', ')}] of ${dt} (expected ${elements * BYTES_PER_ELEMENT[dt]})`);
    }
    entries.push({ name, dtype: dt, shape: shape as number[], begin, end });
  }

  // The format requires the data section to be indexed entirely, without overlaps or holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const entry of sorted) {
    if (entry.begin !== cursor) {
      fail(file, `tensor "${entry.name}": data starts at ${entry.begin}, expected ${cursor} (overlapping or gapped offsets)`);
    }
    cursor = entry.end;
  }
  if (cursor !== dataLength) fail(file, `${dataLength - cursor} trailing bytes after the last tensor`);

  const tensors = new Map<string, SafetensorsTensor>();
  for (const entry of entries) {
    const count = (entry.end - entry.begin) / BYTES_PER_ELEMENT[entry.dtype];
    const data = decode(entry.dtype, new DataView(bytes.buffer, bytes.byteOffset + dataStart + entry.begin, entry.end - entry.begin), count);
    if (rejectNonFinite) {
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i]!)) {
          fail(file, `tensor "${entry.name}": element ${i} is ${data[i]} (NaN/Inf weights: the adapter's training diverged)`);
        }
      }
    }
    tensors.set(entry.name, { name: entry.name, dtype: entry.dtype, shape: entry.shape, data });
  }
  return { file, metadata, tensors };
}

/** Reads and parses a safetensors file (see parseSafetensors). */
export async function readSafetensors(file: string, options?: ReadSafetensorsOptions): Promise<SafetensorsFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (cause) {
    fail(file, `cannot read: ${(cause as Error).message}`, cause);
  }
  return parseSafetensors(bytes, file, options);
}

export interface SafetensorsInput {
  shape: number[];
  data: ArrayLike<number>;
  /** @defaultValue 'F32' */
  dtype?: SafetensorsDtype;
}

/** Encodes tensors as a safetensors file (sorted names, 8-byte aligned header). */
export function encodeSafetensors(tensors: Record<string, SafetensorsInput>, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    const dtype = t.dtype ?? 'F32';
    const size = BYTES_PER_ELEMENT[dtype];
    const blob = Buffer.alloc(t.data.length * size);
    for (let i = 0; i < t.data.length; i++) {
      const v = t.data[i]!;
      if (dtype === 'F32') blob.writeFloatLE(v, i * 4);
      else if (dtype === 'F16') blob.writeUInt16LE(floatToHalf(v), i * 2);
      else {
        // BF16: round the float32 bits to nearest even on the upper half.
        const bits = Buffer.alloc(4);
        bits.writeFloatLE(v, 0);
        const u = bits.readUInt32LE(0);
        blob.writeUInt16LE(((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff, i * 2);
      }
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + blob.length] };
    blobs.push(blob);
    offset += blob.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  return Buffer.concat([length, Buffer.from(json, 'utf8'), ...blobs]);
}
