/**
 * The agent's HTTP endpoint: Prometheus scrapes (/metrics) and the
 * liveness/readiness probes (/healthz, /readyz). node:http only; every
 * response is small and produced in full, so no streaming or routing library.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What /metrics serves; PrometheusExporter is one. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface Liveness {
  live: boolean;
  /** why not live; the 503 body */
  reason?: string;
}

export interface Readiness {
  ready: boolean;
  /** why not ready yet, e.g. "dataplane not attached"; the 503 body */
  reason?: string;
}

/** A host and port as the settings hold them: IPv6 without brackets. */
export interface HostPortAddress {
  host: string;
  port: number;
}

export interface HttpServerOptions {
  /** "host:port", "[v6]:port", or the settings' {host, port}; port 0 picks a free port. */
  address: string | HostPortAddress;
  exporter: MetricsSource;
  health: () => Liveness;
  /** The agent is ready once the dataplane is attached and the first config applied. */
  ready: () => Readiness;
  /**
   * Errors of the listening socket once bound (e.g. EMFILE on accept). Without
   * a handler such an error would crash the agent; default: a process warning.
   */
  onError?: (err: Error) => void;
}

export interface HttpServer {
  /** the bound port (the chosen one when asked for port 0) */
  readonly port: number;
  /** Stops accepting, closes idle keep-alive connections and resolves once in-flight requests are done. */
  close(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';
const ALLOW = 'GET, HEAD';

/** Parses "host:port" or "[v6]:port"; throws with the expected form. */
export function parseListenAddress(text: string): HostPortAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!m || host === undefined || !(port >= 0 && port <= 65535)) {
    throw new Error(`HTTP listen address must be host:port or [ipv6]:port with a port in 0..65535, got ${JSON.stringify(text)}`);
  }
  return { host, port };
}

function formatAddress(a: HostPortAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** A bind error as the operator needs it: which address, what is wrong, what to do. */
function bindError(address: string, err: NodeJS.ErrnoException): Error {
  const change = 'choose another with --metrics-address, SOCKMESH_METRICS_ADDRESS or agent.metricsAddress in the mesh file';
  let msg: string;
  switch (err.code) {
    case 'EADDRINUSE':
      msg = `cannot listen on ${address}: the address is already in use (another sockmesh agent or another process holds it): stop it or ${change}`;
      break;
    case 'EACCES':
      msg = `cannot listen on ${address}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE): use a port >= 1024 or ${change}`;
      break;
    case 'EADDRNOTAVAIL':
      msg = `cannot listen on ${address}: no network interface of this host has that address: ${change}`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      msg = `cannot listen on ${address}: the host name does not resolve: use an IP address or ${change}`;
      break;
    default:
      msg = `cannot listen on ${address}: ${err.message}`;
  }
  return Object.assign(new Error(msg, { cause: err }), { code: err.code });
}

function send(res: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void {
  const buf = Buffer.from(body);
  // Probes and scrapes are point-in-time: never let a proxy cache them.
  res.writeHead(status, { 'Content-Type': TEXT, 'Content-Length': buf.length, 'Cache-Control': 'no-store', ...headers });
  // Node drops the body itself for HEAD; Content-Length still tells its size.
  res.end(buf);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function handle(opts: HttpServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  // Split rather than new URL(): a request target like "//x" would be read as a host.
  const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
  if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
    send(res, 404, `not found: ${path}; try /metrics, /healthz or /readyz\n`);
    return;
  }
  // HEAD is served as GET without a body: HTTP requires both wherever GET works.
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, `method ${req.method ?? '?'} not allowed on ${path}: use GET\n`, { Allow: ALLOW });
    return;
  }
  try {
    switch (path) {
      case '/metrics': {
        const text = await opts.exporter.metrics();
        send(res, 200, text, { 'Content-Type': opts.exporter.contentType });
        return;
      }
      case '/healthz': {
        const h = opts.health();
        if (h.live) send(res, 200, 'ok\n');
        else send(res, 503, `${h.reason ?? 'not live'}\n`);
        return;
      }
      case '/readyz': {
        const r = opts.ready();
        if (r.ready) send(res, 200, 'ok\n');
        else send(res, 503, `${r.reason ?? 'not ready'}\n`);
        return;
      }
    }
  } catch (err) {
    // A failing collector or probe is the agent's bug: say so, and keep serving.
    send(res, 500, `${path} failed: ${errorText(err)}\n`);
  }
}

/** Binds and serves; rejects with a message naming the address when it cannot bind. */
export function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  let addr: HostPortAddress;
  try {
    addr = typeof opts.address === 'string' ? parseListenAddress(opts.address) : opts.address;
  } catch (err) {
    return Promise.reject(err);
  }
  const shown = formatAddress(addr);
  const server = http.createServer((req, res) => {
    handle(opts, req, res).catch((err: unknown) => {
      // Only reachable if writing the response itself threw: the socket is gone or broken.
      res.destroy(err instanceof Error ? err : new Error(errorText(err)));
    });
  });
  return new Promise<HttpServer>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(bindError(shown, err));
    server.once('error', onError);
    server.listen({ host: addr.host, port: addr.port }, () => {
      server.off('error', onError);
      server.on('error', opts.onError ?? ((err: Error) => process.emitWarning(`HTTP server on ${shown}: ${err.message}`)));
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            // close() waits for keep-alive connections (Prometheus keeps its
            // own open between scrapes): drop the idle ones now.
            server.closeIdleConnections();
          }),
      });
    });
  });
}
