import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';

/** The page's files live in src/api/web (also when running from dist/, which tsc does not copy them to). */
const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/api/web');

const FILES: Record<string, { file: () => string; type: string }> = {
  'index.html': { file: () => path.join(WEB_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  'app.js': { file: () => path.join(WEB_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  'style.css': { file: () => path.join(WEB_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  // hls.js from its npm package, served locally (no CDN).
  'vendor/hls.min.js': { file: () => createRequire(import.meta.url).resolve('hls.js/dist/hls.min.js'), type: 'text/javascript; charset=utf-8' },
};

/** The web page: / redirects to /web/; static files only (the page calls the API with the token the user enters). */
export function registerWebRoutes(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/web/'));
  app.get('/web/*', { schema: { hide: true } }, async (request, reply) => {
    const name = (request.params as { '*': string })['*'] || 'index.html';
    const spec = Object.hasOwn(FILES, name) ? FILES[name] : undefined;
    if (!spec) throw new HttpError(404, ErrorCode.NOT_FOUND, `no page file ${name}`);
    const body = await readFile(spec.file());
    return reply.header('content-type', spec.type).header('cache-control', 'no-cache').send(body);
  });
}
