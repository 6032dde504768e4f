// The HTTP side: a landing page at /, the metrics at the telemetry path (text or OpenMetrics, gzipped when
// asked), health and readiness as Prometheus answers them, 404 elsewhere; TLS and basic authentication from
// the web config; limits that keep slow or idle clients from crowding out a scrape.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import { BasicAuth, PasswordChecker, PasswordVerdicts } from './auth';
import { sourceOf } from './fair_queue';
import { ConnectionGuard, ConnectionLimits } from './connections';
import { acceptsGzip, CONTENT_TYPES, Format, negotiateFormat, openMetricsView, Rendered } from './exposition';
import { About, landingPage } from './landing';
import type { Logger } from '../common/log';
import { clientCertAllowed, tlsServerOptions, WebConfig } from './webconfig';

export interface HttpLimits extends ConnectionLimits {
  /** Larger request headers get 431. */
  maxHeaderBytes: number;
  /** A client must send its whole request head within this (slowloris). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: HttpLimits = {
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  maxConnections: 1000,
  firstRequestTimeoutMs: 5_000,
  maxQueuedRequests: 64,
  maxBufferedBytes: 16 * 1024,
};

export interface ServerOptions {
  telemetryPath: string;
  log: Logger;
  webConfig?: WebConfig;
  limits?: Partial<HttpLimits>;
  /** Shown on the landing page. */
  about?: About;
}

const TEXT = 'text/plain; charset=utf-8';

export class ExporterServer {
  readonly server: http.Server;
  readonly connections: ConnectionGuard;
  private readonly passwords = new PasswordChecker();
  /** Kept across reloads: Prometheus' passed check survives one that keeps its user and hash. */
  private readonly verdicts = new PasswordVerdicts();
  private auth: BasicAuth;
  private webConfig: WebConfig | undefined;
  private readonly landingPage: string;
  /** The scrape being rendered, per format: requests that arrive meanwhile share it, so scrapes in flight cost one. */
  private readonly rendering = new Map<Format, Promise<Rendered>>();
  private readonly registries: Record<Format, Pick<Registry, 'metrics'>>;
  /** Set by close(): /-/ready answers 503 from then on. */
  private stopping = false;

  constructor(
    registry: Registry,
    private readonly options: ServerOptions,
  ) {
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.webConfig = options.webConfig;
    this.auth = new BasicAuth(options.webConfig?.users ?? new Map(), this.passwords, this.verdicts);
    const tls = options.webConfig?.tls;
    const serverOptions: http.ServerOptions = {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // How often the two timeouts above are enforced (Node's default, 30 s, lets a slow client linger).
      connectionsCheckingInterval: 1000,
    };
    // One request at a time per connection: pipelined requests wait, and die with their connection.
    const handler = (request: http.IncomingMessage, response: http.ServerResponse) =>
      this.connections.serialize(request.socket, () => this.handle(request, response));
    this.server = tls
      ? https.createServer({ ...serverOptions, ...tlsServerOptions(tls), handshakeTimeout: limits.firstRequestTimeoutMs }, handler)
      : http.createServer(serverOptions, handler);
    this.connections = new ConnectionGuard(limits);
    this.connections.attach(this.server);
    this.server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
    this.landingPage = landingPage(options.telemetryPath, options.about);
    this.registries = { text: registry, openmetrics: openMetricsView(registry) };
  }

  listen(port: number, host: string | undefined): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve(this.server.address() as AddressInfo));
    });
  }

  /**
   * Applies a changed web config: users at once, certificates and keys for new connections. A config that
   * would remove authentication, TLS or the client-certificate policy (or switch TLS on, which needs a
   * restart) is refused: returns why, and nothing changes.
   */
  reload(config: WebConfig): string | undefined {
    const current = this.webConfig;
    if ((current?.users.size ?? 0) > 0 && config.users.size === 0) return 'it has no basic_auth_users: it would remove authentication';
    if (current?.tls && !config.tls) return 'it has no tls_server_config: it would turn TLS off';
    if (!current?.tls && config.tls) return 'turning TLS on needs a restart';
    if (current?.tls && config.tls && config.tls.clientAuth !== current.tls.clientAuth) {
      return `changing client_auth_type (${current.tls.clientAuth} to ${config.tls.clientAuth}) needs a restart`;
    }
    if (config.tls) (this.server as https.Server).setSecureContext(tlsServerOptions(config.tls));
    this.auth = new BasicAuth(config.users, this.passwords, this.verdicts);
    this.webConfig = config;
    return undefined;
  }

  /** Stops accepting; in-flight requests get `graceMs` before their connections are cut. */
  close(graceMs: number): Promise<void> {
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.passwords.close();
    this.server.closeIdleConnections();
    setTimeout(() => this.server.closeAllConnections(), graceMs).unref();
    return closed;
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const send = (status: number, type: string, body: string | Buffer, headers: http.OutgoingHttpHeaders = {}) => {
      response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const tls = this.webConfig?.tls;
    if (tls && !clientCertAllowed(request.socket as TLSSocket, tls.clientAuth)) {
      return send(403, TEXT, 'Forbidden: client certificate required\n');
    }
    if (this.auth.enabled && !(await this.auth.check(request.headers.authorization, sourceOf(request.socket.remoteAddress)))) {
      return send(401, TEXT, 'Unauthorized\n', { 'WWW-Authenticate': 'Basic realm="sockmon", charset="UTF-8"' });
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return send(405, TEXT, 'Method Not Allowed\n', { Allow: 'GET, HEAD' });
    }
    const pathname = (request.url ?? '/').split('?')[0];
    if (pathname === this.options.telemetryPath) {
      try {
        const format = negotiateFormat(request.headers.accept);
        const gzip = acceptsGzip(request.headers['accept-encoding']);
        const body = await this.connections.protect(request.socket, async () => {
          const rendered = await this.render(format);
          return gzip ? rendered.gzip() : rendered.body;
        });
        const headers: http.OutgoingHttpHeaders = { Vary: 'Accept, Accept-Encoding', ...(gzip && { 'Content-Encoding': 'gzip' }) };
        return send(200, CONTENT_TYPES[format], body, headers);
      } catch (error) {
        this.options.log.error('collecting metrics failed', { err: (error as Error).message });
        return send(500, TEXT, 'Internal Server Error\n');
      }
    }
    if (pathname === '/') return send(200, 'text/html; charset=utf-8', this.landingPage);
    // As Prometheus' own: healthy while it answers at all; ready once listening (the netlink sockets and the
    // close watcher are opened before that, so a scrape gets an answer) and until it starts to stop.
    if (pathname === '/-/healthy') return send(200, TEXT, 'sockmon is Healthy.\n');
    if (pathname === '/-/ready') return this.stopping ? send(503, TEXT, 'sockmon is stopping.\n') : send(200, TEXT, 'sockmon is Ready.\n');
    return send(404, TEXT, 'Not Found\n');
  }

  /** The render in flight for `format`, or a new one. */
  private render(format: Format): Promise<Rendered> {
    let rendering = this.rendering.get(format);
    if (!rendering) {
      rendering = this.registries[format].metrics().then((text) => new Rendered(format, text));
      this.rendering.set(format, rendering);
      void rendering.finally(() => this.rendering.delete(format)).catch(() => {});
    }
    return rendering;
  }
}
