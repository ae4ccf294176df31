import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TokenScope } from '../../shared/api-tokens.js';
import type { HttpError } from '../../shared/errors/index.js';
import { requiredScope } from './scope-policy.js';

/** Where the web page lives; its token field sets the cookie a browser sends everywhere else. */
const WEB_PAGE = '/web/';

/**
 * Answers a refused request (401 no or bad token, 403 scope too small). Programs get the JSON
 * error as every route answers it; a browser that opens the address itself (GET or HEAD whose
 * Accept ranks text/html above JSON, as a navigation does) gets the same status as a short HTML
 * page that says which token is needed and how to give it.
 */
export function sendAuthError(request: FastifyRequest, reply: FastifyReply, error: HttpError, heldScope?: TokenScope): FastifyReply {
  void reply.code(error.statusCode);
  if (error.statusCode === 401) void reply.header('www-authenticate', 'Bearer realm="streamseg"');
  if ((request.method !== 'GET' && request.method !== 'HEAD') || !prefersHtml(request.headers.accept)) {
    return reply.send({ error: { code: error.code, message: error.message } });
  }
  const path = request.url.split('?')[0] ?? '';
  return reply
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(authErrorPage(path, requiredScope(request.method, path), heldScope));
}

/** Whether an Accept header ranks text/html above application/json (`*` alone, or no header, is a program: JSON). */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const ranges = accept.split(',').map((part) => {
    const [type = '', ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const quality = q === undefined ? 1 : Number(q.slice(2));
    return { type, q: Number.isFinite(quality) ? quality : 0 };
  });
  const qualityOf = (...types: string[]): number => {
    for (const type of types) {
      const range = ranges.find((r) => r.type === type);
      if (range) return range.q;
    }
    return 0;
  };
  const html = qualityOf('text/html');
  return html > 0 && html > qualityOf('application/json', 'application/*', '*/*');
}

function authErrorPage(path: string, needed: TokenScope, held: TokenScope | undefined): string {
  const at = `<code>${escapeHtml(path)}</code>`;
  const back = `${WEB_PAGE}?return=${encodeURIComponent(path)}`;
  const entry = needed === 'admin' ? '<code>&lt;token&gt;:admin</code>, or a token with no scope' : `<code>&lt;token&gt;:${needed}</code> or a wider scope`;
  const why = path === '/admin' || path.startsWith('/admin/') ? ' (bull-board can retry and remove jobs)' : '';
  const [title, lead] =
    held === undefined
      ? [
          'An API token is needed',
          `${at} answers only requests that carry one of the tokens in the server's <code>STREAMSEG_API_TOKENS</code> setting. This browser sent none, or one the server does not know.`,
        ]
      : ['This token may not open this page', `The API token this browser sent has scope <code>"${held}"</code>; ${at} needs <code>"${needed}"</code>.`];
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · streamseg</title>
  <link rel="stylesheet" href="/web/style.css">
</head>
<body>
  <header><h1>streamseg</h1></header>
  <main>
    <section class="auth-page">
      <h2>${title}</h2>
      <p>${lead}</p>
      <p>${at} needs a token with the <code>${needed}</code> scope${why}: an <code>STREAMSEG_API_TOKENS</code> entry ${entry}. Ask whoever runs <code>streamseg serve</code> for one; scopes are described in docs/SECURITY.md, “Token scopes”.</p>
      <h3>How to give it</h3>
      <ol>
        <li>Open the <a href="${escapeHtml(back)}">streamseg web page</a> and enter the token in the <strong>API token</strong> field at the top. The page keeps it in a cookie that this browser sends here too.</li>
        <li>Come back to ${at} (the web page links back to it), or reload this page.</li>
      </ol>
      <p class="note">Programs send the header <code>Authorization: Bearer &lt;token&gt;</code> instead, and get this answer as JSON.</p>
    </section>
  </main>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}
