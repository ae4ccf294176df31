#!/usr/bin/env node
// `streamseg` (`npx streamseg` in a checkout after `npm install`). In a checkout, where tsx (a dev
// dependency) and the TypeScript source are present, it runs the source, so it is never older than
// the code; an installed or pruned package (the Docker image) runs the compiled dist/ from
// `npm run build`.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);

function tsxAvailable() {
  try {
    createRequire(import.meta.url).resolve('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

if (existsSync(fileURLToPath(source)) && tsxAvailable()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  process.stderr.write('streamseg: E_NOT_BUILT: neither the source with tsx (npm install) nor dist/ (npm run build) is here\n');
  process.exit(1);
}
