import { execFile } from 'node:child_process';
import v8 from 'node:v8';
import { promisify } from 'node:util';
import { describe, expect, it, vi } from 'vitest';
import { PIPELINE_HEAP_FLAGS, tunePipelineHeap } from '../../src/shared/pipeline-heap.js';

const exec = promisify(execFile);

/**
 * The heap settings a pipeline process makes (their effect, fewer full collections and less
 * CPU in `streamseg run`, is measured in bench/README.md). V8 ignores a flag it does not know
 * without a word, so the names are checked against this node's V8.
 */
describe('tunePipelineHeap', () => {
  it("names flags this node's V8 knows", async () => {
    const { stdout } = await exec(process.execPath, ['--v8-options'], { maxBuffer: 16 * 1024 * 1024 });
    for (const flag of PIPELINE_HEAP_FLAGS) {
      const name = flag.slice(0, flag.indexOf('='));
      expect(stdout, name).toContain(`  ${name} (`);
    }
  });

  it('sets them once per process, however many times roles start', () => {
    // Not applied to the test process itself: the spy stands in for V8.
    const setFlags = vi.spyOn(v8, 'setFlagsFromString').mockImplementation(() => undefined);
    try {
      tunePipelineHeap();
      tunePipelineHeap();
      expect(setFlags.mock.calls.map(([flag]) => flag)).toEqual([...PIPELINE_HEAP_FLAGS]);
    } finally {
      setFlags.mockRestore();
    }
  });
});
