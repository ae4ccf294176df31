import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/shared/errors/index.js';
import { loadAdapter } from '../../src/shared/adapters/adapter-loader.js';
import { TEST_TARGETS, writeFixtureAdapter } from '../fixtures/adapters/adapter-fixtures.js';

describe('adapter loader', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-adapter-loader-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function refusal(adapterDir: string): Promise<ModelError> {
    try {
      await loadAdapter(adapterDir, TEST_TARGETS);
    } catch (e) {
      expect(e).toBeInstanceOf(ModelError);
      return e as ModelError;
    }
    throw new Error('expected the adapter to be refused');
  }

  it('loads a PEFT adapter: r, alpha, scaling, tensors per target, content version', async () => {
    const fx = await writeFixtureAdapter(path.join(dir, 'fog'), { r: 4, alpha: 8, seed: 3 });
    const adapter = await loadAdapter(fx.dir, TEST_TARGETS);
    expect(adapter.name).toBe('fog');
    expect(adapter.r).toBe(4);
    expect(adapter.alpha).toBe(8);
    expect(adapter.version).toMatch(/^[0-9a-f]{16}$/);
    expect([...adapter.targets.keys()].sort()).toEqual(TEST_TARGETS.map((t) => t.module).sort());
    const qkv = adapter.targets.get('enc.attn0.qkv')!;
    expect(qkv).toMatchObject({ in: 16, out: 48, r: 4, scaling: 2 });
    expect(Array.from(qkv.A)).toEqual(Array.from(fx.tensors['enc.attn0.qkv']!.A));
    expect(adapter.byteLength).toBe(TEST_TARGETS.reduce((s, t) => s + 4 * 4 * (t.in + t.out), 0));

    const same = await writeFixtureAdapter(path.join(dir, 'fog-copy'), { r: 4, alpha: 8, seed: 3 });
    expect((await loadAdapter(same.dir, TEST_TARGETS)).version).toBe(adapter.version);
    const other = await writeFixtureAdapter(path.join(dir, 'fog-other'), { r: 4, alpha: 8, seed: 4 });
    expect((await loadAdapter(other.dir, TEST_TARGETS)).version).not.toBe(adapter.version);
  });

  it('accepts a subset of targets, F16 weights, 1x1-conv shapes, rank/alpha patterns and rsLoRA', async () => {
    const fx = await writeFixtureAdapter(path.join(dir, 'subset'), {
      r: 2,
      skip: ['head.proj'],
      dtype: 'F16',
      config: { alpha_pattern: { qkv: 8 }, use_rslora: false },
    });
    const adapter = await loadAdapter(fx.dir, TEST_TARGETS);
    expect(adapter.targets.has('head.proj')).toBe(false);
    expect(adapter.targets.get('enc.attn0.qkv')!.scaling).toBe(4);
    expect(adapter.targets.get('enc.s1.b0.pw')!.scaling).toBe(2);

    const conv = await writeFixtureAdapter(path.join(dir, 'conv'), {
      r: 2,
      targets: [TEST_TARGETS[0]!],
      config: { use_rslora: true, lora_alpha: 4 },
      override: {
        'base_model.model.enc.s1.b0.pw.lora_A.weight': { shape: [2, 12, 1, 1], data: new Float32Array(24).fill(0.5) },
        'base_model.model.enc.s1.b0.pw.lora_B.weight': { shape: [12, 2, 1, 1], data: new Float32Array(24).fill(0.25) },
      },
    });
    const convAdapter = await loadAdapter(conv.dir, TEST_TARGETS);
    expect(convAdapter.targets.get('enc.s1.b0.pw')!.scaling).toBeCloseTo(4 / Math.SQRT2, 12);
    expect(convAdapter.targets.get('enc.s1.b0.pw')!.A[0]).toBe(0.5);
  });

  it('refuses wrong shapes with E_ADAPTER_SHAPE naming file, tensor, expected and actual', async () => {
    const fx = await writeFixtureAdapter(path.join(dir, 'badshape'), {
      override: { 'base_model.model.head.proj.lora_A.weight': { shape: [4, 21], data: new Float32Array(84) } },
    });
    const error = await refusal(fx.dir);
    expect(error.code).toBe('E_ADAPTER_SHAPE');
    expect(error.message).toContain(path.join(fx.dir, 'adapter_model.safetensors'));
    expect(error.message).toContain('tensor "base_model.model.head.proj.lora_A.weight": expected [r, 20], got [4, 21]');

    const badB = await writeFixtureAdapter(path.join(dir, 'badB'), {
      override: { 'base_model.model.head.proj.lora_B.weight': { shape: [8, 3], data: new Float32Array(24) } },
    });
    expect((await refusal(badB.dir)).message).toContain('lora_B.weight": expected [8, 4] (r from lora_A), got [8, 3]');
  });

  it('refuses unknown modules, missing halves, rank/config mismatches and non-LoRA keys', async () => {
    const unknown = await writeFixtureAdapter(path.join(dir, 'unknown'), {
      override: { 'base_model.model.dec.nope.lora_A.weight': { shape: [4, 3], data: new Float32Array(12) } },
    });
    expect((await refusal(unknown.dir)).message).toMatch(/module "dec\.nope" is not a LoRA target of this model/);

    const half = await writeFixtureAdapter(path.join(dir, 'half'), { targets: [TEST_TARGETS[0]!] });
    await writeFile(
      path.join(half.dir, 'adapter_model.safetensors'),
      (await import('../../src/shared/adapters/safetensors.js')).encodeSafetensors({
        'base_model.model.enc.s1.b0.pw.lora_A.weight': { shape: [4, 12], data: new Float32Array(48) },
      }),
    );
    expect((await refusal(half.dir)).message).toMatch(/lora_B\.weight" is missing/);

    const rank = await writeFixtureAdapter(path.join(dir, 'rank'), { r: 4, config: { r: 8 } });
    expect((await refusal(rank.dir)).message).toMatch(/rank 4 differs from r = 8/);

    const key = await writeFixtureAdapter(path.join(dir, 'key'), { override: { 'model.bias': { shape: [1], data: [0] } } });
    expect((await refusal(key.dir)).message).toMatch(/tensor "model\.bias" is not a LoRA weight/);
  });

  it('refuses bad configs and NaN weights with E_ADAPTER_FILE', async () => {
    const nan = await writeFixtureAdapter(path.join(dir, 'nan'), {
      override: { 'base_model.model.head.proj.lora_B.weight': { shape: [8, 4], data: new Float32Array(32).fill(Number.NaN) } },
    });
    const nanError = await refusal(nan.dir);
    expect(nanError.code).toBe('E_ADAPTER_FILE');
    expect(nanError.message).toMatch(/adapter_model\.safetensors: tensor "base_model\.model\.head\.proj\.lora_B\.weight": element 0 is NaN/);

    const dora = await writeFixtureAdapter(path.join(dir, 'dora'), { config: { use_dora: true } });
    expect((await refusal(dora.dir)).message).toMatch(/use_dora/);
    const ia3 = await writeFixtureAdapter(path.join(dir, 'ia3'), { config: { peft_type: 'IA3' } });
    expect((await refusal(ia3.dir)).message).toMatch(/peft_type is IA3/);
    const nor = await writeFixtureAdapter(path.join(dir, 'nor'), { config: { r: 'four' } });
    expect((await refusal(nor.dir)).message).toMatch(/adapter_config\.json: r:/);
    const missing = await refusal(path.join(dir, 'absent'));
    expect(missing.code).toBe('E_ADAPTER_FILE');
    expect(missing.message).toMatch(/absent\/adapter_(config\.json|model\.safetensors): cannot read/);
  });
});
