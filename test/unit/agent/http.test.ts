import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { parseListenAddress, startHttpServer, type HttpServer, type HttpServerOptions, type Liveness, type Readiness } from '../../../src/agent/http';
import { PrometheusExporter } from '../../../src/exporters/prometheus';
import { Aggregator } from '../../../src/telemetry/aggregator';
import { Directory } from '../../../src/telemetry/directory';
import { whole } from '../../helpers/records';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection (agent: false), so nothing keeps the server from closing. */
function request(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The probes' state, flipped by the tests. */
class Probes {
  live: Liveness = { live: true };
  ready: Readiness = { ready: false, reason: 'dataplane not attached' };
}

async function serve(t: test.TestContext, over: Partial<HttpServerOptions> = {}): Promise<{ server: HttpServer; probes: Probes; aggregator: Aggregator }> {
  const aggregator = new Aggregator(new Directory());
  const exporter = new PrometheusExporter({ defaultMetrics: false });
  exporter.attach(aggregator);
  const probes = new Probes();
  const server = await startHttpServer({
    address: '127.0.0.1:0',
    exporter,
    health: () => probes.live,
    ready: () => probes.ready,
    ...over,
  });
  t.after(() => server.close());
  return { server, probes, aggregator };
}

test('GET /metrics serves the exporter text with the Prometheus content type', async (t) => {
  const { server, aggregator } = await serve(t);
  assert.ok(server.port > 0);
  aggregator.ingest(whole({
    cookie: 1n, cgroupId: 0, side: 'client', family: 4,
    local: { address: '10.1.0.5', port: 40000 }, remote: { address: '10.0.0.7', port: 8080 },
    serviceId: 0, backendId: 0, startNs: 0, durationNs: 5_000_000, bytesSent: 42, bytesReceived: 7,
    connectUs: 120, srttUs: { last: 80, min: 80, max: 80 }, retransmits: 0,
    kind: 'close', closeCause: 'fin', error: 0,
  }));
  const first = await request(server.port, '/metrics');
  assert.match(first.body, /^sockmesh_sent_bytes_total\{side="client",workload="unknown",service="",backend=""\} 0$/m, 'a new series, at 0 first');
  const r = await request(server.port, '/metrics');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(r.body, /^sockmesh_sent_bytes_total\{side="client",workload="unknown",service="",backend=""\} 42$/m);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
  // A query string does not change the resource.
  assert.equal((await request(server.port, '/metrics?name[]=x')).status, 200);
});

test('/healthz: 200 "ok" while live, 503 with the reason when not', async (t) => {
  const { server, probes } = await serve(t);
  let r = await request(server.port, '/healthz');
  assert.deepEqual([r.status, r.body, r.headers['content-type']], [200, 'ok\n', 'text/plain; charset=utf-8']);
  probes.live = { live: false, reason: 'ring buffer reader stalled for 30s' };
  r = await request(server.port, '/healthz');
  assert.deepEqual([r.status, r.body], [503, 'ring buffer reader stalled for 30s\n']);
  probes.live = { live: false };
  r = await request(server.port, '/healthz');
  assert.deepEqual([r.status, r.body], [503, 'not live\n']);
});

test('/readyz: 503 with the reason until the agent is ready, then 200', async (t) => {
  const { server, probes } = await serve(t);
  let r = await request(server.port, '/readyz');
  assert.deepEqual([r.status, r.body], [503, 'dataplane not attached\n']);
  probes.ready = { ready: false, reason: 'no config applied yet' };
  r = await request(server.port, '/readyz');
  assert.deepEqual([r.status, r.body], [503, 'no config applied yet\n']);
  probes.ready = { ready: true };
  r = await request(server.port, '/readyz');
  assert.deepEqual([r.status, r.body], [200, 'ok\n']);
});

test('unknown paths are 404; other methods than GET and HEAD are 405 with Allow', async (t) => {
  const { server } = await serve(t);
  for (const path of ['/', '/metrics/', '/health', '/readyz/x', '//metrics']) {
    const r = await request(server.port, path);
    assert.equal(r.status, 404, path);
    assert.match(r.body, /try \/metrics, \/healthz or \/readyz/);
  }
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await request(server.port, '/metrics', method);
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, 'GET, HEAD');
  }
  // An unknown path is 404 whatever the method: there is nothing to allow there.
  assert.equal((await request(server.port, '/nope', 'POST')).status, 404);
});

test('HEAD answers like GET without a body', async (t) => {
  const { server, probes } = await serve(t);
  probes.ready = { ready: true };
  const r = await request(server.port, '/readyz', 'HEAD');
  assert.deepEqual([r.status, r.body, r.headers['content-length']], [200, '', '3']);
});

test('a failing exporter or probe is a 500 that says what failed, and the server keeps serving', async (t) => {
  const { server } = await serve(t, {
    exporter: { contentType: 'text/plain', metrics: () => Promise.reject(new Error('collector exploded')) },
    health: () => {
      throw new Error('state unreadable');
    },
  });
  let r = await request(server.port, '/metrics');
  assert.deepEqual([r.status, r.body], [500, '/metrics failed: collector exploded\n']);
  r = await request(server.port, '/healthz');
  assert.deepEqual([r.status, r.body], [500, '/healthz failed: state unreadable\n']);
  assert.equal((await request(server.port, '/readyz')).status, 503);
});

test('a port in use is refused with a message naming the address and what to do', async (t) => {
  const { server } = await serve(t);
  await assert.rejects(
    startHttpServer({ address: `127.0.0.1:${server.port}`, exporter: new PrometheusExporter({ defaultMetrics: false }), health: () => ({ live: true }), ready: () => ({ ready: true }) }),
    (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
      assert.match(err.message, new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${server.port}: the address is already in use`));
      assert.match(err.message, /--metrics-address/);
      return true;
    },
  );
});

test('an address no interface has is refused as such', async (t) => {
  // 192.0.2.0/24 is TEST-NET-1: never assigned to a host.
  const start = startHttpServer({ address: { host: '192.0.2.1', port: 0 }, exporter: new PrometheusExporter({ defaultMetrics: false }), health: () => ({ live: true }), ready: () => ({ ready: true }) });
  const outcome: HttpServer | Error = await start.then(
    (s) => s,
    (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
  );
  if (!(outcome instanceof Error)) {
    // net.ipv4.ip_nonlocal_bind=1 lets any address bind: nothing to refuse here.
    await outcome.close();
    t.skip('this host allows binding non-local addresses (ip_nonlocal_bind)');
    return;
  }
  assert.match(outcome.message, /^cannot listen on 192\.0\.2\.1:0: no network interface of this host has that address/);
  assert.equal((outcome as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
});

test('listen addresses: host:port, [v6]:port, or {host, port}; anything else is refused before binding', async (t) => {
  assert.deepEqual(parseListenAddress('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['9464', ':9464', '127.0.0.1', '127.0.0.1:', '::1:9464', '127.0.0.1:65536', '127.0.0.1:http', '[::1]9464']) {
    assert.throws(() => parseListenAddress(bad), /must be host:port or \[ipv6\]:port/, bad);
  }
  await assert.rejects(
    startHttpServer({ address: 'nonsense', exporter: new PrometheusExporter({ defaultMetrics: false }), health: () => ({ live: true }), ready: () => ({ ready: true }) }),
    /got "nonsense"/,
  );
  // The settings' form, as AgentSettings.metricsAddress holds it.
  const { server } = await serve(t, { address: { host: '127.0.0.1', port: 0 } });
  assert.equal((await request(server.port, '/healthz')).status, 200);
});

test('close() does not wait for an idle keep-alive connection, and frees the port', async () => {
  const exporter = new PrometheusExporter({ defaultMetrics: false });
  const server = await startHttpServer({ address: '127.0.0.1:0', exporter, health: () => ({ live: true }), ready: () => ({ ready: true }) });
  const agent = new http.Agent({ keepAlive: true });
  try {
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: server.port, path: '/metrics', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      }).on('error', reject);
    });
    // Prometheus keeps its connection open between scrapes: close must not hang on it.
    await server.close();
  } finally {
    agent.destroy();
  }
  // The port is free again: a plain listener can take it.
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(server.port, '127.0.0.1', resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
});
