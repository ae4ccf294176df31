/**
 * Loads a model package with executionProvider 'cuda' and prints, as JSON on stdout, the provider
 * the session got and the info lines the repository logged. Run as a child process by
 * test/unit/worker-onnx-session.test.ts: ONNX Runtime's native logger writes its failed CUDA
 * library load straight to this process's stderr, which the test captures instead of the run's.
 * Usage: node --import tsx test/helpers/cuda-fallback-probe.ts PACKAGE_DIR
 */
import { createLogger } from '../../src/shared/logger.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { OnnxSessionRepository } from '../../src/workers/segmentation/onnx-session.repository.js';

const dir = process.argv[2];
if (!dir) throw new Error('usage: cuda-fallback-probe.ts PACKAGE_DIR');
const lines: string[] = [];
const capture = createLogger('info');
const spy = { ...capture, info: (obj: object, msg: string) => lines.push(`${msg} ${JSON.stringify(obj)}`) } as unknown as typeof capture;
const session = await OnnxSessionRepository.load(await loadModelPackage(dir), { executionProvider: 'cuda', intraOpThreads: 0, logger: spy });
process.stdout.write(`${JSON.stringify({ provider: session.provider, lines })}\n`);
await session.release();
