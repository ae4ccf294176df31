import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { ErrorCode, errorLine, InputError } from '../shared/errors/index.js';
import type { UrlDestinationPolicy } from '../shared/url-policy.js';

/**
 * An HTTP proxy on loopback that ffmpeg and ffprobe are pointed at (`http_proxy`) for a URL
 * submitted through the API, so that every HTTP(S) connection they make — the URL itself, each
 * redirect, each playlist segment — passes the destination policy. Plain HTTP is forwarded to the
 * address the policy checked (no second resolution); HTTPS goes through CONNECT, checked the same
 * way. A refused destination answers 403, and `refusal` keeps the first reason for the error
 * message.
 */
export class EgressProxy {
  /** The first destination refused, as the error the producer reports. */
  refusal: InputError | undefined;
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(policy: UrlDestinationPolicy, what: string): Promise<EgressProxy> {
    let proxy!: EgressProxy;
    const refuse = async (host: string): Promise<string | undefined> => {
      try {
        const addresses = await policy.checkHost(host, what);
        return addresses[0] ?? host;
      } catch (error) {
        proxy.refusal ??= error instanceof InputError ? error : new InputError(ErrorCode.INPUT_URL_DESTINATION, `${what}: ${errorLine(error)}`);
        return undefined;
      }
    };
    const server = http.createServer((request, response) => {
      void (async () => {
        let target: URL;
        try {
          target = new URL(request.url ?? '');
        } catch {
          response.writeHead(400).end();
          return;
        }
        if (target.protocol !== 'http:') {
          response.writeHead(400).end();
          return;
        }
        const address = await refuse(target.hostname.replace(/^\[|\]$/g, ''));
        if (!address) {
          response.writeHead(403, { 'content-type': 'text/plain' }).end(proxy.refusal?.message ?? 'refused');
          return;
        }
        const headers = { ...request.headers };
        delete headers['proxy-connection'];
        delete headers['proxy-authorization'];
        const upstream = http.request(
          { host: address, port: Number(target.port || 80), method: request.method, path: `${target.pathname}${target.search}`, headers, setHost: false },
          (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(response);
          },
        );
        upstream.on('error', () => response.destroy());
        request.pipe(upstream);
      })();
    });
    server.on('connect', (request: http.IncomingMessage, client: net.Socket, head: Buffer) => {
      void (async () => {
        const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(request.url ?? '');
        const address = match ? await refuse(match[1]!) : undefined;
        if (!match || !address) {
          client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
          return;
        }
        const upstream = net.connect(Number(match[2]), address, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      })();
    });
    server.on('connection', (socket: net.Socket) => {
      proxy.sockets.add(socket);
      socket.on('close', () => proxy.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    proxy = new EgressProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  /** Environment for an ffmpeg/ffprobe child: every HTTP(S) connection through this proxy. */
  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, http_proxy: this.url };
    for (const name of ['no_proxy', 'NO_PROXY', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY']) delete env[name];
    return env;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
