import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { loadAdapter } from '../../src/shared/adapters/adapter-loader.js';
import { AdapterRegistry } from '../../src/workers/adapters/adapter-registry.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { createRedis } from '../../src/shared/redis.js';

/**
 * Bring your own model (issue 13), end to end on a real torchvision architecture with random
 * weights: export LRASPP-MobileNetV3 as a user would, `streamseg model import` it, run a synthetic
 * video through `streamseg run --model`, self-train an adapter without labels with
 * `streamseg adapters train`, and check the registry loads it, it changes the network's output
 * and the next run retrieves it. Small inputs (fit 6144 pixels) keep it to about a minute.
 */
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, torchvision, onnx']).status === 0;
const CLASSES = 'sky,road,sidewalk,building,vegetation,vehicle,person,pole';

function cli(args: string[], redisUrl?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'silent', OMP_WAIT_POLICY: 'PASSIVE' };
  delete env.REDIS_URL;
  if (redisUrl) env.REDIS_URL = redisUrl;
  delete env.STREAMSEG_MODEL;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/cli/main.ts'), ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const EXPORT = `
import sys, torch
from torchvision.models.segmentation import lraspp_mobilenet_v3_large
torch.set_num_threads(1); torch.manual_seed(0)
class Out(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=8)
    def forward(self, x):
        return self.net(x)["out"]
m = Out().eval()
torch.onnx.export(m, (torch.randn(1, 3, 64, 96),), sys.argv[1], input_names=["input"], output_names=["logits"],
    dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}}, opset_version=13)
`;

describe.skipIf(!hasTorch)('streamseg model import + adapters train (LRASPP, random weights)', () => {
  let dir: string;
  let onnxFile: string;
  let video: string;
  let pkgDir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-byom-'));
    onnxFile = path.join(dir, 'lraspp.onnx');
    pkgDir = path.join(dir, 'pkg');
    video = path.join(dir, 'fog.mp4');
    const exported = spawnSync(PYTHON, ['-c', EXPORT, onnxFile], { env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' }, encoding: 'utf8' });
    expect(exported.status, exported.stderr).toBe(0);
    const synth = await cli(['synth', '--out', video, '--size', '192x108', '--frames', '16', '--scene-conditions', 'fog', '--seed', '3']);
    expect(synth.code, synth.stderr).toBe(0);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('imports: LoRA graph inputs, fit input, empty index, and the worker interface check passes', async () => {
    const result = await cli(['model', 'import', onnxFile, '--classes', CLASSES, '--out', pkgDir, '--fit-pixels', '6144', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout.trim()) as { parity: { zeroLoraMaxAbs: number; rank0MaxAbs: number; randomLoraVsDenseMaxAbs: number } };
    expect(report.parity.zeroLoraMaxAbs).toBe(0);
    expect(report.parity.rank0MaxAbs).toBeLessThanOrEqual(1e-5);
    expect(report.parity.randomLoraVsDenseMaxAbs).toBeLessThan(1e-4);
    const pkg = await loadModelPackage(pkgDir);
    expect(pkg.manifest.input.fit).toEqual({ pixels: 6144, stride: 32, maxSide: 1024 });
    expect(pkg.manifest.classes.map((c) => c.name).join(',')).toBe(CLASSES);
    expect(pkg.manifest.lora.targets.length).toBeGreaterThan(40);
    const session = await ort.InferenceSession.create(pkg.modelPath);
    for (const t of pkg.manifest.lora.targets) {
      expect(session.inputNames).toContain(t.inputA);
      expect(session.inputNames).toContain(t.inputB);
    }
    await session.release();
    const index = JSON.parse(await readFile(path.join(pkgDir, 'adapters/index.json'), 'utf8')) as { adapters: unknown[]; embedding: { size: number } };
    expect(index.adapters).toEqual([]);
    expect(index.embedding.size).toBe(pkg.manifest.embedder!.size);
  });

  it('a bad model file ends with one line naming the problem', async () => {
    const bad = path.join(dir, 'corrupt.onnx');
    await writeFile(bad, Buffer.from('this is not an onnx model at all'.repeat(8)));
    const result = await cli(['model', 'import', bad, '--classes', CLASSES, '--out', path.join(dir, 'bad')]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^streamseg: E_IMPORT_CORRUPT: .*corrupt\.onnx/);
  });

  it('streamseg run --model writes every frame with the imported model', async () => {
    const out = path.join(dir, 'out-base');
    const result = await cli(['run', video, '--model', pkgDir, '--out', out, '--no-progress']);
    expect(result.code, result.stderr).toBe(0);
    const lines = (await readFile(path.join(out, 'masks.ndjson'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(16);
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { frames: number };
    expect(report.frames).toBe(16);
  });

  it('self-trains an adapter without labels: loss falls, the registry loads it, it changes the output, the next run retrieves it', async () => {
    // prettier-ignore
    const result = await cli(['adapters', 'train', '--model', pkgDir, '--from', video, '--name', 'fog-cam', '--condition', 'fog',
      '--steps', '8', '--batch', '2', '--max-frames', '6', '--lr', '0.01', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/s\/step on this machine/);
    const report = JSON.parse(result.stdout.trim()) as { mode: string; lossFirst: number; lossLast: number; steps: number; published: boolean };
    expect(report.mode).toBe('self-training');
    expect(report.steps).toBe(8);
    expect(report.lossLast).toBeLessThan(report.lossFirst);
    expect(report.published).toBe(false);

    const pkg = await loadModelPackage(pkgDir);
    const registry = await AdapterRegistry.open({ pkg });
    await registry.close();
    expect(registry.problems()).toEqual([]);
    expect(registry.entries().map((e) => e.name)).toEqual(['fog-cam']);

    // Fed as the engine feeds it (scaling folded into B), the adapter moves the logits.
    const adapter = await loadAdapter(path.join(pkgDir, 'adapters/fog-cam'), pkg.manifest.lora.targets);
    const session = await ort.InferenceSession.create(pkg.modelPath);
    const { width, height } = pkg.manifest.input;
    const image = new ort.Tensor(
      'float32',
      Float32Array.from({ length: 3 * width * height }, (_, i) => Math.sin(i * 0.37)),
      [1, 3, height, width],
    );
    const k = pkg.manifest.classes.length;
    const eye = new ort.Tensor(
      'float32',
      Float32Array.from({ length: k * k }, (_, i) => (i % (k + 1) === 0 ? 1 : 0)),
      [k, k],
    );
    const feeds = (withAdapter: boolean) => {
      const f: Record<string, ort.Tensor> = { [pkg.manifest.input.name]: image, [pkg.manifest.classEmbeddings.input]: eye };
      for (const t of pkg.manifest.lora.targets) {
        const a = withAdapter ? adapter.targets.get(t.module) : undefined;
        f[t.inputA] = a ? new ort.Tensor('float32', a.A, [a.r, t.in]) : new ort.Tensor('float32', new Float32Array(t.in), [1, t.in]);
        f[t.inputB] = a
          ? new ort.Tensor(
              'float32',
              a.B.map((v) => v * a.scaling),
              [t.out, a.r],
            )
          : new ort.Tensor('float32', new Float32Array(t.out), [t.out, 1]);
      }
      return f;
    };
    const base = (await session.run(feeds(false)))[pkg.manifest.output.name]!.data as Float32Array;
    const adapted = (await session.run(feeds(true)))[pkg.manifest.output.name]!.data as Float32Array;
    await session.release();
    let change = 0;
    for (let i = 0; i < base.length; i++) change = Math.max(change, Math.abs(base[i]! - adapted[i]!));
    expect(change).toBeGreaterThan(1e-4);

    const out = path.join(dir, 'out-adapted');
    const run = await cli(['run', video, '--model', pkgDir, '--out', out, '--no-progress']);
    expect(run.code, run.stderr).toBe(0);
    const runReport = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { frames: number; scenes: { adapters: { name: string }[] }[] };
    expect(runReport.frames).toBe(16);
    expect(runReport.scenes.flatMap((s) => s.adapters.map((a) => a.name))).toContain('fog-cam');
  });

  it('with REDIS_URL the trained adapter is published to running workers (run-time registry)', async () => {
    const server = await startRedisServer();
    const redis = createRedis(server.url, { purpose: 'producer', connectionName: 'model-import-test' });
    try {
      const result = await cli(
        ['adapters', 'train', '--model', pkgDir, '--from', video, '--name', 'fog-cam-2', '--steps', '2', '--batch', '1', '--max-frames', '2', '--json'],
        server.url,
      );
      expect(result.code, result.stderr).toBe(0);
      expect((JSON.parse(result.stdout.trim()) as { published: boolean }).published).toBe(true);
      const registry = await AdapterRegistry.open({ pkg: await loadModelPackage(pkgDir), redis });
      await registry.close();
      const entry = registry.entries().find((e) => e.name === 'fog-cam-2');
      expect(entry?.source).toBe('runtime');
    } finally {
      redis.disconnect();
      await server.stop();
    }
  });
});
