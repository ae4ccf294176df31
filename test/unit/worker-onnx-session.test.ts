import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { compareModelInterface } from '../../src/workers/segmentation/model-interface.js';
import { OnnxSessionRepository, splitEvenly } from '../../src/workers/segmentation/onnx-session.repository.js';
import { makeTestModel } from '../fixtures/test-model.js';
import { REPO_ROOT } from '../helpers/cli.js';

const logger = createLogger('silent');

describe('OnnxSessionRepository', () => {
  let dir: string;
  let pkg: ModelPackage;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-onnx-'));
    // Generated fresh (not the committed copy) so the generator itself stays tested.
    pkg = await makeTestModel(path.join(dir, 'model'), 32);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('segments a batch on its inference thread exactly as the same engine does inline', async () => {
    const { manifest } = pkg;
    const frames = [0, 1].map((seed) => Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37 + seed * 101) % 256));
    const request = {
      frames,
      size: { width: 32, height: 32 },
      feeds: {
        class_embeddings: new ort.Tensor('float32', Float32Array.from(manifest.classes.slice(0, 3).flatMap((c) => c.embedding)), [3, 8]),
        'stem.proj.lora_A': new ort.Tensor('float32', new Float32Array(3), [1, 3]),
        'stem.proj.lora_B': new ort.Tensor('float32', new Float32Array(8), [8, 1]),
      },
      // Logit channels 0..2 written as class values 5, 6, 7: the thread applies the mapping.
      classOf: Uint8Array.from([5, 6, 7]),
    };
    const threaded = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 1, logger });
    const inline = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 1, logger, inThread: false });
    expect(threaded.provider).toBe('cpu');
    const [a, b] = await Promise.all([threaded.segment(request), threaded.segment({ ...request, frames: [frames[1]!] })]);
    const reference = await inline.segment(request);
    expect(a.masks).toHaveLength(2);
    expect(a.masks.every((m) => m.length === 32 * 32)).toBe(true);
    expect(new Set(a.masks.flatMap((m) => [...m])).size).toBeGreaterThan(1);
    expect(a.masks.every((m) => m.every((v) => v >= 5 && v <= 7))).toBe(true);
    expect(a.masks.map((m) => [...m])).toEqual(reference.masks.map((m) => [...m]));
    // Concurrent calls queue in order and each gets its own frames' masks, in the thread and inline
    // (inline calls share one batch buffer, so they must not interleave).
    expect([...b.masks[0]!]).toEqual([...reference.masks[1]!]);
    const [c, d] = await Promise.all([inline.segment({ ...request, frames: [frames[1]!] }), inline.segment({ ...request, frames: [frames[0]!] })]);
    expect([...c.masks[0]!]).toEqual([...reference.masks[1]!]);
    expect([...d.masks[0]!]).toEqual([...reference.masks[0]!]);
    expect(a.inferenceMs).toBeGreaterThan(0);
    await expect(threaded.segment({ ...request, frames: [new Uint8Array(5)] })).rejects.toThrow(/needs 3072/);
    await Promise.all([threaded.release(), inline.release()]);
    await threaded.release();
  });

  it('spreads concurrent batches over several inference threads, each batch getting its own frames back', async () => {
    const { manifest } = pkg;
    const frames = Array.from({ length: 6 }, (_, seed) => Uint8Array.from({ length: 32 * 32 * 3 }, (_, i) => (i * 37 + seed * 101) % 256));
    const request = (batch: Uint8Array[]) => ({
      frames: batch,
      size: { width: 32, height: 32 },
      feeds: {
        class_embeddings: new ort.Tensor('float32', Float32Array.from(manifest.classes.slice(0, 3).flatMap((c) => c.embedding)), [3, 8]),
        'stem.proj.lora_A': new ort.Tensor('float32', Float32Array.from([0.5, -0.25, 1]), [1, 3]),
        'stem.proj.lora_B': new ort.Tensor(
          'float32',
          Float32Array.from({ length: 8 }, (_, i) => (i - 4) / 8),
          [8, 1],
        ),
      },
      classOf: Uint8Array.from([0, 1, 2]),
    });
    const lines: string[] = [];
    const captured = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const pool = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 0, threads: 3, logger: captured });
    const inline = await OnnxSessionRepository.load(pkg, { executionProvider: 'cpu', intraOpThreads: 1, logger, inThread: false });
    const loaded = JSON.parse(lines.find((line) => line.includes('segmentation model loaded'))!) as { inferenceThreads: number; intraOpThreads: number };
    // Intra-op threads left to streamseg: the cores are split between the sessions, at least one each.
    expect(loaded).toMatchObject({ inferenceThreads: 3, intraOpThreads: Math.max(1, Math.floor(os.availableParallelism() / 3)) });
    // Six single-frame batches and one of three frames at once: more than the threads, so some queue behind others.
    const batches = [...frames.map((frame) => [frame]), frames.slice(1, 4)];
    const results = await Promise.all(batches.map((batch) => pool.segment(request(batch))));
    const reference = await inline.segment({ ...request(frames), confidence: true });
    results.forEach((result, b) => expect(result.masks.map((m) => [...m])).toEqual(batches[b]!.map((frame) => [...reference.masks[frames.indexOf(frame)]!])));
    expect(new Set(reference.masks.map((m) => m.toString('hex'))).size).toBe(frames.length);
    // A whole batch is split into one part per thread (2 + 2 + 1 frames); the parts come back joined in order.
    const split = await pool.segment({ ...request(frames.slice(0, 5)), confidence: true });
    expect(split.masks.map((m) => [...m])).toEqual(reference.masks.slice(0, 5).map((m) => [...m]));
    expect(split.confidence).toHaveLength(5);
    [...split.confidence!].forEach((value, i) => expect(value).toBeCloseTo(reference.confidence![i]!, 5));
    expect(split.inferenceMs).toBeGreaterThan(0);
    await Promise.all([pool.release(), inline.release()]);
    await expect(pool.segment(request([frames[0]!]))).rejects.toThrow(/released/);
  });

  it('splits a batch into runs of near-equal length, in order', () => {
    const letters = [...'abcdefgh'];
    expect(splitEvenly(letters, 2)).toEqual([[...'abcd'], [...'efgh']]);
    expect(splitEvenly(letters, 3)).toEqual([[...'abc'], [...'def'], [...'gh']]);
    expect(splitEvenly(letters.slice(0, 2), 4)).toEqual([['a'], ['b']]);
    expect(splitEvenly(letters, 1)).toEqual([letters]);
    expect(splitEvenly([], 2)).toEqual([[]]);
  });

  it('falls back to the CPU when CUDA cannot be loaded (one log line says so)', async () => {
    // In a child process: ONNX Runtime's native logger prints the failed CUDA library load
    // (`Failed to load library libonnxruntime_providers_shared.so`) to stderr, which would land
    // red in a passing test run; here it is captured, and nothing but ONNX Runtime's own lines is allowed there.
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/cuda-fallback-probe.ts'), pkg.dir],
      { cwd: REPO_ROOT },
    );
    const probe = JSON.parse(stdout) as { provider: string; lines: string[] };
    // This machine's onnxruntime-node has no CUDA provider library; a GPU machine with it would say cuda.
    expect(['cpu', 'cuda']).toContain(probe.provider);
    expect(probe.lines).toHaveLength(1);
    expect(probe.lines[0]).toContain(`"provider":"${probe.provider}"`);
    const others = stderr.split('\n').filter((line) => line.length > 0 && !/onnxruntime/i.test(line));
    expect(others).toEqual([]);
  });

  it('refuses a model that does not match its manifest, naming every difference', async () => {
    const broken = path.join(dir, 'broken');
    await cp(pkg.dir, broken, { recursive: true });
    const manifest = JSON.parse(await readFile(path.join(broken, 'model.json'), 'utf8'));
    manifest.lora.targets.push({ module: 'head.proj', in: 8, out: 8, inputA: 'head.proj.lora_A', inputB: 'head.proj.lora_B' });
    manifest.output.name = 'scores';
    manifest.classEmbeddings.dim = 4;
    manifest.classes = manifest.classes.map((c: { embedding: number[] }) => ({ ...c, embedding: c.embedding.slice(0, 4) }));
    await writeFile(path.join(broken, 'model.json'), JSON.stringify(manifest));
    const error = await OnnxSessionRepository.load(await loadModelPackage(broken), { executionProvider: 'cpu', intraOpThreads: 1, logger }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'E_MODEL_MISMATCH' });
    const message = (error as Error).message;
    expect(message).toContain('no input "head.proj.lora_A"');
    expect(message).toContain('no input "head.proj.lora_B"');
    expect(message).toContain('no output "scores"');
    expect(message).toContain('"class_embeddings" dimension 1 is 8, manifest says 4');
  });

  it('reports graph inputs the manifest does not know, and fixed sizes that differ', () => {
    const tensor = (name: string, shape: (number | string)[]) => ({ name, isTensor: true as const, type: 'float32' as const, shape });
    const problems = compareModelInterface(pkg.manifest, {
      inputs: [
        tensor('image', ['N', 3, 64, 64]),
        tensor('class_embeddings', ['C', 8]),
        tensor('stem.proj.lora_A', ['r', 3]),
        tensor('stem.proj.lora_B', [8, 'r']),
        tensor('extra', [1]),
      ],
      outputs: [tensor('logits', ['N', 'C', 64, 64])],
    });
    expect(problems).toEqual([
      'input "image" dimension 2 is 64, manifest says 32',
      'input "image" dimension 3 is 64, manifest says 32',
      'graph input "extra" is not in the manifest (nothing would feed it)',
    ]);
  });
});
