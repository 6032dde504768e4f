// The HTTP side: a landing page at /, the metrics at the telemetry path, 404 elsewhere.
import http from 'node:http';
import type { Registry } from 'prom-client';
import { UsageError } from './errors';
import type { Logger } from './log';

export interface ListenAddress {
  /** undefined: every address, IPv4 and IPv6. */
  host: string | undefined;
  port: number;
}

/** Parses node_exporter-style `--web.listen-address`: `:19469`, `127.0.0.1:19469`, `[::1]:19469`. */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`invalid listen address "${text}" (host:port, [ipv6]:port or :port)`);
  }
  return { host: match[1] ?? (match[2] || undefined), port };
}

export interface ServerOptions {
  telemetryPath: string;
  log: Logger;
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function createServer(registry: Registry, options: ServerOptions): http.Server {
  const path = escapeHtml(options.telemetryPath);
  const landingPage = `<!DOCTYPE html>
<html><head><title>sockmon</title></head>
<body><h1>sockmon</h1><p>TCP connections of the load balancer's proxy peers, read from the kernel.</p>
<p><a href="${path}">Metrics</a></p></body></html>
`;
  return http.createServer(async (request, response) => {
    const send = (status: number, type: string, body: string, headers: http.OutgoingHttpHeaders = {}) => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return send(405, 'text/plain; charset=utf-8', 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
    }
    const pathname = (request.url ?? '/').split('?')[0];
    if (pathname === options.telemetryPath) {
      try {
        return send(200, registry.contentType, await registry.metrics());
      } catch (error) {
        options.log.error('collecting metrics failed', { err: (error as Error).message });
        return send(500, 'text/plain; charset=utf-8', 'Internal Server Error\n');
      }
    }
    if (pathname === '/') return send(200, 'text/html; charset=utf-8', landingPage);
    return send(404, 'text/plain; charset=utf-8', 'Not Found\n');
  });
}
