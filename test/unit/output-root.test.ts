import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertUnderOutputRoot } from '../../src/shared/output-root.js';

describe('assertUnderOutputRoot', () => {
  let dir: string;
  let root: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-out-root-'));
    root = path.join(dir, 'out');
    await mkdir(path.join(root, 'inside'), { recursive: true });
    await mkdir(path.join(dir, 'elsewhere'));
    await symlink(path.join(dir, 'elsewhere'), path.join(root, 'link-out'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the root itself and directories below it, existing or not', async () => {
    expect(await assertUnderOutputRoot(root, root)).toBe(root);
    expect(await assertUnderOutputRoot(path.join(root, 'inside'), root)).toBe(path.join(root, 'inside'));
    expect(await assertUnderOutputRoot(path.join(root, 'new', 'deeper'), root)).toBe(path.join(root, 'new', 'deeper'));
  });

  it('refuses .. and absolute paths elsewhere with E_OUTPUT_DIR naming both directories', async () => {
    await expect(assertUnderOutputRoot(path.join(root, '..', 'elsewhere'), root)).rejects.toMatchObject({
      code: 'E_OUTPUT_DIR',
      message: expect.stringContaining(`outside the output root ${root}`),
    });
    await expect(assertUnderOutputRoot('/etc', root)).rejects.toMatchObject({ code: 'E_OUTPUT_DIR' });
    await expect(assertUnderOutputRoot(`${root}-sibling`, root)).rejects.toMatchObject({ code: 'E_OUTPUT_DIR' });
  });

  it('refuses a symlink below the root that points outside it', async () => {
    await expect(assertUnderOutputRoot(path.join(root, 'link-out', 'video'), root)).rejects.toMatchObject({ code: 'E_OUTPUT_DIR' });
  });
});
