import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/shared/errors/index.js';
import { encodeSafetensors, parseSafetensors, readSafetensors } from '../../src/shared/adapters/safetensors.js';

function header(json: object, body: Buffer = Buffer.alloc(0)): Buffer {
  const text = Buffer.from(JSON.stringify(json), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(text.length), 0);
  return Buffer.concat([length, text, body]);
}

function expectAdapterFileError(fn: () => unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelError);
  expect((error as ModelError).code).toBe('E_ADAPTER_FILE');
  expect((error as ModelError).message).toMatch(pattern);
}

describe('safetensors reader', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-safetensors-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips F32, F16 and BF16 with metadata', () => {
    const values = [0, 1, -2.5, 0.1, 65504, 1e-5, -3.140625];
    const bytes = encodeSafetensors(
      {
        'a.f32': { shape: [7], data: values },
        'b.f16': { shape: [7, 1], data: values, dtype: 'F16' },
        'c.bf16': { shape: [1, 7], data: values, dtype: 'BF16' },
      },
      { format: 'pt' },
    );
    const file = parseSafetensors(bytes, 'mem.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    const f32 = file.tensors.get('a.f32')!;
    expect(f32.dtype).toBe('F32');
    expect(Array.from(f32.data)).toEqual(Array.from(new Float32Array(values)));
    const f16 = file.tensors.get('b.f16')!;
    expect(f16.shape).toEqual([7, 1]);
    values.forEach((v, i) => expect(f16.data[i]).toBeCloseTo(v, Math.abs(v) > 1000 ? 0 : 3));
    expect(f16.data[4]).toBe(65504);
    const bf16 = file.tensors.get('c.bf16')!;
    values.forEach((v, i) => expect(Math.abs(bf16.data[i]! - v)).toBeLessThanOrEqual(Math.abs(v) / 128 + 1e-30));
  });

  it('decodes F16 subnormals, infinities and signs exactly', () => {
    // 0x0001 = 2^-24, 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504
    const body = Buffer.alloc(8);
    [0x0001, 0x3c00, 0xc000, 0x7bff].forEach((h, i) => body.writeUInt16LE(h, i * 2));
    const file = parseSafetensors(header({ t: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, body), 'x');
    expect(Array.from(file.tensors.get('t')!.data)).toEqual([2 ** -24, 1, -2, 65504]);
  });

  it('reads files written by the training pipeline (numpy) when python is available', async () => {
    const out = path.join(dir, 'py.safetensors');
    const script = `
import json, struct, numpy as np
a = np.arange(6, dtype='<f4').reshape(2, 3) / 7
h = json.dumps({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
open(${JSON.stringify(out)}, "wb").write(struct.pack("<Q", len(h)) + h + a.tobytes())
`;
    const py = spawnSync('/usr/bin/python3', ['-c', script]);
    if (py.status !== 0) return; // no numpy here: the other tests cover the format
    const file = await readSafetensors(out);
    expect(file.tensors.get('x')!.shape).toEqual([2, 3]);
    expect(file.tensors.get('x')!.data[5]).toBeCloseTo(5 / 7, 6);
  });

  it('refuses a file shorter than the length prefix', () => {
    expectAdapterFileError(() => parseSafetensors(Buffer.alloc(5), 'short.safetensors'), /short\.safetensors: truncated/);
  });

  it('refuses a header length past the end of the file', () => {
    const bytes = header({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(4)).subarray(0, 20);
    expectAdapterFileError(() => parseSafetensors(bytes, 'cut.safetensors'), /cut\.safetensors: header length \d+ exceeds the file/);
  });

  it('refuses truncated tensor data, naming the tensor', () => {
    const full = encodeSafetensors({ 'lora.weight': { shape: [4, 4], data: new Float32Array(16).fill(1) } });
    expectAdapterFileError(() => parseSafetensors(full.subarray(0, full.length - 3), 'a.safetensors'), /tensor "lora\.weight".*truncated/);
  });

  it('refuses a header that is not JSON, or not an object', () => {
    const bad = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{no}')]);
    expectAdapterFileError(() => parseSafetensors(bad, 'bad.safetensors'), /bad\.safetensors: header is not valid UTF-8 JSON/);
    expectAdapterFileError(() => parseSafetensors(header([1, 2]), 'arr.safetensors'), /not a JSON object/);
  });

  it('refuses unsupported dtypes, bad shapes, wrong sizes and overlapping offsets', () => {
    expectAdapterFileError(
      () => parseSafetensors(header({ t: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, Buffer.alloc(8)), 'f'),
      /tensor "t": dtype I64 is not supported/,
    );
    expectAdapterFileError(
      () => parseSafetensors(header({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)), 'f'),
      /tensor "t": shape/,
    );
    expectAdapterFileError(
      () => parseSafetensors(header({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(4)), 'f'),
      /tensor "t": 4 bytes for shape \[2\] of F32 \(expected 8\)/,
    );
    expectAdapterFileError(
      () =>
        parseSafetensors(
          header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(12)),
          'f',
        ),
      /tensor "b": data starts at 4, expected 8/,
    );
    expectAdapterFileError(() => parseSafetensors(header({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, Buffer.alloc(8)), 'f'), /4 trailing bytes/);
  });

  it('rejects NaN and Inf values, naming tensor and element, unless told not to', () => {
    const nan = encodeSafetensors({ 'w.lora_B.weight': { shape: [3], data: [0, Number.NaN, 1] } });
    expectAdapterFileError(() => parseSafetensors(nan, 'nan.safetensors'), /nan\.safetensors: tensor "w\.lora_B\.weight": element 1 is NaN/);
    const inf = encodeSafetensors({ w: { shape: [2], data: [Number.POSITIVE_INFINITY, 1], dtype: 'F16' } });
    expectAdapterFileError(() => parseSafetensors(inf, 'inf'), /element 0 is Infinity/);
    expect(Number.isNaN(parseSafetensors(nan, 'nan', { rejectNonFinite: false }).tensors.get('w.lora_B.weight')!.data[1])).toBe(true);
  });

  it('names the path when the file cannot be read', async () => {
    await expect(readSafetensors(path.join(dir, 'missing.safetensors'))).rejects.toMatchObject({
      code: 'E_ADAPTER_FILE',
      message: expect.stringContaining('missing.safetensors: cannot read'),
    });
    const file = path.join(dir, 'ok.safetensors');
    await writeFile(file, encodeSafetensors({ t: { shape: [1], data: [3] } }));
    expect((await readSafetensors(file)).tensors.get('t')!.data[0]).toBe(3);
  });
});
