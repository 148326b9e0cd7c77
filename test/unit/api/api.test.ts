/**
 * The local API end to end in one process: the real server on a temporary
 * unix socket, a fake AgentView, the real ApiClient; raw sockets for what a
 * well-behaved client never sends; the compiled CLI as a child process.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApiClient, ApiError } from '../../../src/api/client';
import { FrameReader, MAX_RESPONSE_FRAME } from '../../../src/api/frame';
import { ApiServer, ApiServerOptions, startApiServer } from '../../../src/api/server';
import * as protobuf from 'protobufjs';
import type { NamedRecord } from '../../../src/agent/view';
import { DecodedResponse, PROTO_FILE, decodeResponse, encodeRequest } from '../../../src/api/schema';
import { Cleanup } from '../../helpers/cleanup';
import { waitFor } from '../../helpers/wait';
import {
  BACKENDS, CLIENT_LABELS, EDGES, FakeView, NAMED_RECORDS, RECORDS, SERVICES, STATUS, STATUS_MINIMAL, fakeView, interim, named, record,
} from './fake-view';

const CLI = path.join(__dirname, '..', '..', '..', 'src', 'cli', 'main.js');

interface Harness {
  dir: string;
  socket: string;
  view: FakeView;
  server: ApiServer;
  cleanup: Cleanup;
}

/** A server in a fresh temp dir (the socket's own directory does not exist yet: the server makes it). */
async function harness(opts: ApiServerOptions = {}): Promise<Harness> {
  const cleanup = new Cleanup();
  const dir = cleanup.add('temp dir', fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-api-')), (d) => fs.rmSync(d, { recursive: true, force: true }));
  const socket = path.join(dir, 'run', 'api.sock');
  const view = fakeView();
  const server = cleanup.add('api server', await startApiServer(socket, view, opts), (s) => s.close());
  return { dir, socket, view, server, cleanup };
}

async function withHarness(fn: (h: Harness) => Promise<void>, opts: ApiServerOptions = {}): Promise<void> {
  const h = await harness(opts);
  try {
    await fn(h);
  } finally {
    await h.cleanup.run();
  }
}

async function withClient<T>(socket: string, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  const c = await ApiClient.connect(socket, { timeoutMs: 5000 });
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

/** A client that speaks raw bytes and reads whatever frames come back. */
interface Raw {
  sock: net.Socket;
  responses: DecodedResponse[];
  closed: Promise<void>;
  isClosed(): boolean;
}

function raw(socketPath: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const responses: DecodedResponse[] = [];
    const reader = new FrameReader(MAX_RESPONSE_FRAME);
    let closed = false;
    const closedP = new Promise<void>((res) => sock.on('close', () => {
      closed = true;
      res();
    }));
    sock.on('data', (d: Buffer) => responses.push(...reader.push(d).map(decodeResponse)));
    sock.on('error', () => undefined);
    sock.once('connect', () => resolve({ sock, responses, closed: closedP, isClosed: () => closed }));
    sock.once('error', reject);
  });
}

function errorOf(r: DecodedResponse | undefined): { id: number; code: string; message: string } {
  assert.ok(r && 'body' in r && r.body.result === 'error', `expected an error response, got ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
  return { id: r.id, code: r.body.error.code, message: r.body.error.message };
}

/** After abuse, a fresh client must still be served. */
async function stillServes(socket: string): Promise<void> {
  assert.deepEqual(await withClient(socket, (c) => c.services()), SERVICES);
}

// ---- every method through the real client ----------------------------------

test('status: every field round-trips, optional parts stay absent when unset', () =>
  withHarness(async ({ socket, view }) => {
    await withClient(socket, async (c) => {
      assert.deepEqual(await c.status(), STATUS);
      view.statusValue = STATUS_MINIMAL;
      const minimal = await c.status();
      assert.deepEqual(minimal, STATUS_MINIMAL);
      assert.ok(!('otlp' in minimal) && !('appliedAt' in minimal.config) && !('rejected' in minimal.config));
    });
  }));

test('services, backends, edges round-trip exactly', () =>
  withHarness(async ({ socket }) => {
    await withClient(socket, async (c) => {
      assert.deepEqual(await c.services(), SERVICES);
      assert.deepEqual(await c.backends('default/web'), BACKENDS['default/web']);
      assert.deepEqual(await c.backends('shop/cart'), []);
      assert.deepEqual(await c.edges(), EDGES);
    });
  }));

test('backends of an unknown service: ApiError not_found, and the connection keeps working', () =>
  withHarness(async ({ socket }) => {
    await withClient(socket, async (c) => {
      await assert.rejects(c.backends('default/nope'), (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.code, 'not_found');
        assert.match(err.message, /default\/nope/);
        return true;
      });
      assert.deepEqual(await c.services(), SERVICES);
    });
  }));

test('connections: every record kind, u64 cookies and IPv6 intact; filters reach the view', () =>
  withHarness(async ({ socket, view }) => {
    await withClient(socket, async (c) => {
      const all = await c.connections();
      assert.deepEqual(all, NAMED_RECORDS);
      assert.equal(all[0]!.cookie, 0xffff_ffff_ffff_ff01n);
      assert.deepEqual(view.filters.at(-1), {});

      assert.deepEqual(await c.connections({ workload: 'shop/cart' }), [NAMED_RECORDS[2]]);
      assert.deepEqual(view.filters.at(-1), { workload: 'shop/cart' });
      assert.deepEqual(await c.connections({ service: 'default/web' }), NAMED_RECORDS.filter((r) => r.serviceId === 7));
      assert.deepEqual(view.filters.at(-1), { service: 'default/web' });
    });
  }));

test('open connections: their own method, with the filter; the view answers with interim records', () =>
  withHarness(async ({ socket, view }) => {
    await withClient(socket, async (c) => {
      assert.deepEqual(await c.openConnections(), [NAMED_RECORDS[2]], 'the interim record (an IPv6 server side) intact');
      assert.deepEqual(view.filters.at(-1), {});
      assert.deepEqual(await c.openConnections({ workload: 'shop/cart' }), [NAMED_RECORDS[2]]);
      assert.deepEqual(view.filters.at(-1), { workload: 'shop/cart' });
      assert.deepEqual(await c.openConnections({ service: 'default/web' }), []);
    });
  }));

test('connections: the names of the ids arrive with every record (labels), side from the record', () =>
  withHarness(async ({ socket, view }) => {
    // An id the config does not name: the agent says 'unknown', not ''.
    view.records.push({ ...record(5), cgroupId: 4242, serviceId: 99, backendId: 98 });
    await withClient(socket, async (c) => {
      const all = await c.connections();
      assert.deepEqual(all.map((r) => r.labels), [
        CLIENT_LABELS,
        CLIENT_LABELS,
        // server side, no VIP and no backend at this endpoint: non-service traffic
        { side: 'server', workload: 'shop/cart', service: '', backend: '' },
        CLIENT_LABELS,
        { side: 'client', workload: 'unknown', service: 'unknown', backend: 'unknown' },
      ]);
      // The names are labels, the ids stay.
      assert.deepEqual([all[0]!.cgroupId, all[0]!.serviceId, all[0]!.backendId], [1001, 7, 3]);
    });
  }));

test('a record from an agent without labels (older): unknown for named ids, empty for zero ones', () => {
  // Encode with the schema itself, the labels field left out as an older agent would.
  const root = protobuf.loadSync(PROTO_FILE);
  const Response = root.lookupType('sockmesh.v1.Response');
  const wire = (r: { cgroupId: number; side: string; serviceId: number; backendId: number }): Record<string, unknown> => ({
    cookie: '1', family: 4, local: { address: '10.0.0.9', port: 1 }, remote: { address: '10.0.0.1', port: 2 },
    startNs: 0, durationNs: 0, bytesSent: 0, bytesReceived: 0, connectUs: 0, srttUs: {}, retransmits: 0, interim: {}, ...r,
  });
  const bytes = Response.encodeDelimited(Response.fromObject({
    id: 4,
    listConnections: {
      records: [wire({ cgroupId: 1001, side: 'SIDE_CLIENT', serviceId: 7, backendId: 3 }), wire({ cgroupId: 1002, side: 'SIDE_SERVER', serviceId: 0, backendId: 0 })],
    },
  })).finish();
  const res = decodeResponse(bytes);
  assert.ok('body' in res && res.body.result === 'listConnections', 'invalid' in res ? res.invalid : res.body.result);
  assert.deepEqual(res.body.records.map((r) => r.labels), [
    { side: 'client', workload: 'unknown', service: 'unknown', backend: 'unknown' },
    { side: 'server', workload: 'unknown', service: '', backend: '' },
  ]);
});

test('requests are multiplexed: concurrent calls on one connection each get their own answer', () =>
  withHarness(async ({ socket }) => {
    await withClient(socket, async (c) => {
      const [s, sv, b, e] = await Promise.all([c.status(), c.services(), c.backends('default/web'), c.edges()]);
      assert.deepEqual([s, sv, b, e], [STATUS, SERVICES, BACKENDS['default/web'], EDGES]);
    });
  }));

test('a view that throws: INTERNAL error to that request, the agent and the connection go on', () =>
  withHarness(async ({ socket, view }) => {
    await withClient(socket, async (c) => {
      view.failNext = new Error('directory not built yet');
      await assert.rejects(c.status(), (err: unknown) => err instanceof ApiError && err.code === 'internal' && /directory not built yet/.test(err.message));
      assert.deepEqual(await c.status(), STATUS);
    });
  }));

// ---- follow ------------------------------------------------------------------

test('follow: replay first, then records pushed into the view arrive in order; close unsubscribes', () =>
  withHarness(async ({ socket, view }) => {
    const c = await ApiClient.connect(socket);
    const got: NamedRecord[] = [];
    const stream = await c.follow({ workload: 'default/client' }, (r) => got.push(r), { replayRecent: true });
    // The replay is complete once follow() resolves.
    const replay = NAMED_RECORDS.filter((r) => r.cgroupId === 1001);
    assert.deepEqual(got, replay);
    assert.equal(view.followers.size, 1);
    assert.deepEqual([...view.followers][0]!.filter, { workload: 'default/client' });

    const live = [record(10), interim(11), { ...record(12), cgroupId: 1002 }, record(13)];
    for (const r of live) view.push(r);
    const expected = [...replay, ...[live[0]!, live[1]!, live[3]!].map(named)];
    await waitFor(() => got.length >= expected.length, 'live records');
    assert.deepEqual(got, expected, 'the other workload\'s record is filtered out');
    assert.deepEqual(got.at(-1)!.labels, CLIENT_LABELS, 'live records are named too');

    stream.close();
    await stream.done;
    await waitFor(() => view.followers.size === 0, 'the server to unsubscribe');
  }));

test('follow without replay: only new records; two follows on one connection each get theirs', () =>
  withHarness(async ({ socket, view }) => {
    const c = await ApiClient.connect(socket);
    const a: NamedRecord[] = [];
    const b: NamedRecord[] = [];
    const sa = await c.follow({}, (r) => a.push(r));
    await c.follow({ workload: 'shop/cart' }, (r) => b.push(r));
    assert.deepEqual([a, b], [[], []]);
    view.push(record(20));
    view.push({ ...record(21), cgroupId: 1002 });
    await waitFor(() => a.length === 2 && b.length === 1, 'both streams');
    assert.deepEqual(b, [named({ ...record(21), cgroupId: 1002 })]);
    assert.equal(b[0]!.labels.workload, 'shop/cart');
    // Unary calls still work next to running follows.
    assert.deepEqual(await c.status(), STATUS);
    sa.close();
    await waitFor(() => view.followers.size === 0, 'both unsubscribed');
  }));

test('follow: the agent going away rejects done; the server closing ends every follower', () =>
  withHarness(async ({ socket, view, server }) => {
    const c = await ApiClient.connect(socket);
    const stream = await c.follow({}, () => undefined);
    await server.close();
    await assert.rejects(stream.done, (err: unknown) => err instanceof ApiError && err.code === 'closed');
    assert.equal(view.followers.size, 0);
    assert.ok(!fs.existsSync(socket), 'close removes the socket file');
  }));

test('follow: a client that does not read is cut off (SLOW_CONSUMER), not buffered without bound', () =>
  withHarness(
    async ({ socket, view }) => {
      const r = await raw(socket);
      r.sock.write(encodeRequest({ id: 5, call: { method: 'follow', filter: {}, replayRecent: false } }));
      await waitFor(() => view.followers.size === 1, 'subscribed');
      r.sock.pause();
      // Far more than the kernel's socket buffer plus the 64 KiB allowed backlog.
      for (let i = 0; i < 50_000 && view.followers.size > 0; i++) view.push(record(100 + i));
      assert.equal(view.followers.size, 0, 'the stream was stopped');
      r.sock.resume();
      await waitFor(() => r.responses.some((x) => 'body' in x && x.body.result === 'error'), 'the slow_consumer error');
      const err = errorOf(r.responses.find((x) => 'body' in x && x.body.result === 'error'));
      assert.deepEqual([err.id, err.code], [5, 'slow_consumer']);
      r.sock.destroy();
      await stillServes(socket);
    },
    { maxBacklogBytes: 64 * 1024 },
  ));

// ---- bad input -----------------------------------------------------------------

test('garbage bytes: an error or a hang-up, and the next client is served', () =>
  withHarness(async ({ socket }) => {
    const cases: [string, Buffer][] = [
      ['a length prefix that never ends', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x41])],
      ['text', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
      ['random bytes', Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 151 + 7) & 0xff))],
    ];
    for (const [what, bytes] of cases) {
      const r = await raw(socket);
      r.sock.end(bytes);
      await r.closed;
      // Whatever came back is an error (one per frame the bytes happened to form), never a result.
      for (const x of r.responses) assert.ok(errorOf(x), what);
      await stillServes(socket);
    }
  }));

test('a well-framed message that is not a Request: BAD_REQUEST for id 0, the connection stays usable', () =>
  withHarness(async ({ socket }) => {
    const r = await raw(socket);
    r.sock.write(Buffer.from([0x04, 0x0f, 0xff, 0xff, 0xff]));
    await waitFor(() => r.responses.length === 1, 'the error');
    const err = errorOf(r.responses[0]);
    assert.deepEqual([err.id, err.code], [0, 'bad_request']);
    r.sock.write(encodeRequest({ id: 9, call: { method: 'listServices' } }));
    await waitFor(() => r.responses.length === 2, 'the answer');
    const ok = r.responses[1]!;
    assert.ok('body' in ok && ok.id === 9 && ok.body.result === 'listServices');
    r.sock.destroy();
  }));

test('client mistakes are BAD_REQUEST, not the agent\'s internal errors: id 0, an empty service, a reused follow id', () =>
  withHarness(async ({ socket }) => {
    const r = await raw(socket);
    r.sock.write(encodeRequest({ id: 0, call: { method: 'listServices' } }));
    r.sock.write(encodeRequest({ id: 5, call: { method: 'listBackends', service: '' } }));
    r.sock.write(encodeRequest({ id: 6, call: { method: 'follow', filter: {}, replayRecent: false } }));
    r.sock.write(encodeRequest({ id: 6, call: { method: 'follow', filter: {}, replayRecent: false } }));
    const isError = (x: DecodedResponse): boolean => 'body' in x && x.body.result === 'error';
    await waitFor(() => r.responses.filter(isError).length === 3, 'three errors');
    const errs = r.responses.filter(isError).map((x) => errorOf(x));
    assert.deepEqual(errs.map((e) => [e.id, e.code]), [[0, 'bad_request'], [5, 'bad_request'], [6, 'bad_request']]);
    assert.match(errs[0]!.message, /request id 0 is reserved/);
    assert.match(errs[1]!.message, /listBackends\.service is required/);
    assert.match(errs[2]!.message, /request id 6 is already following on this connection/);
    r.sock.destroy();
  }));

test('an unknown method (a newer client): UNKNOWN_METHOD with the request id', () =>
  withHarness(async ({ socket }) => {
    const r = await raw(socket);
    // Request { id: 7, <field 99>: {} }: tag (99 << 3 | 2) = 0x9a 0x06, length 0.
    const body = Buffer.from([0x08, 0x07, 0x9a, 0x06, 0x00]);
    r.sock.write(Buffer.concat([Buffer.from([body.length]), body]));
    await waitFor(() => r.responses.length === 1, 'the error');
    const err = errorOf(r.responses[0]);
    assert.deepEqual([err.id, err.code], [7, 'unknown_method']);
    assert.ok(!r.isClosed());
    r.sock.destroy();
  }));

test('a frame over 1 MiB: FRAME_TOO_LARGE from the prefix alone, then the connection is closed', () =>
  withHarness(async ({ socket }) => {
    const r = await raw(socket);
    // varint(2 MiB) = 0x80 0x80 0x80 0x01; no payload needs to follow.
    r.sock.write(Buffer.from([0x80, 0x80, 0x80, 0x01, 0x00, 0x00]));
    await r.closed;
    const err = errorOf(r.responses[0]);
    assert.deepEqual([err.id, err.code], [0, 'frame_too_large']);
    await stillServes(socket);
  }));

test('a client that hangs up mid-frame gets BAD_REQUEST and is closed', () =>
  withHarness(async ({ socket }) => {
    const r = await raw(socket);
    const frame = encodeRequest({ id: 3, call: { method: 'status' } });
    r.sock.end(frame.subarray(0, 2));
    await r.closed;
    assert.equal(errorOf(r.responses[0]).code, 'bad_request');
    await stillServes(socket);
  }));

// ---- the socket file -------------------------------------------------------------

test('socket file is 0600, its missing directory is created 0700', () =>
  withHarness(async ({ socket }) => {
    const st = fs.lstatSync(socket);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
    // No temporary name left behind next to it.
    assert.deepEqual(fs.readdirSync(path.dirname(socket)), ['api.sock']);
  }));

test('a stale socket from a dead agent is replaced', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-api-'));
  try {
    const socket = path.join(dir, 'api.sock');
    // A process that binds and dies without cleaning up: what a crashed agent leaves.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socket)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.on('exit', r));
    assert.ok(fs.lstatSync(socket).isSocket(), 'stale socket file exists');
    const server = await startApiServer(socket, fakeView());
    try {
      await stillServes(socket);
    } finally {
      await server.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a live agent on the path is refused with a clear error and keeps serving', () =>
  withHarness(async ({ socket }) => {
    await assert.rejects(startApiServer(socket, fakeView()), /already serving its API at .*api\.sock/);
    await stillServes(socket);
  }));

test('a path that is not a socket is never replaced', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-api-'));
  try {
    const file = path.join(dir, 'notes.txt');
    fs.writeFileSync(file, 'keep me');
    await assert.rejects(startApiServer(file, fakeView()), /exists and is not a socket/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'keep me');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('client: no agent at the path says so, with how to start it or pass --socket', async () => {
  const missing = path.join(os.tmpdir(), `sockmesh-none-${process.pid}.sock`);
  await assert.rejects(ApiClient.connect(missing), (err: unknown) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, 'not_running');
    assert.ok(err.message.includes(`not running at ${missing}`), err.message);
    assert.match(err.message, /sockmesh agent/);
    assert.match(err.message, /--socket/);
    return true;
  });
});

test('client: a path that is no socket, or too long for one, says that instead of "not running"', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-notsock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'mesh.yaml');
  fs.writeFileSync(file, 'kind: Mesh\n');
  for (const [p, what] of [[file, 'a regular file'], [dir, 'a directory']] as const) {
    await assert.rejects(ApiClient.connect(p), (err: unknown) =>
      err instanceof ApiError && err.message.startsWith(`${p} is ${what}, not the agent's unix socket: point --socket`));
  }
  const long = path.join(dir, 'x'.repeat(120));
  await assert.rejects(ApiClient.connect(long), (err: unknown) =>
    err instanceof ApiError && /is 1\d\d bytes long, more than a unix socket path can be \(107\): use a shorter --socket path/.test(err.message));
});

test('client: something else on the socket (it answers HTTP and hangs up) is named as such', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sockmesh-other-'));
  const socket = path.join(dir, 'other.sock');
  const other = net.createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((r) => other.listen(socket, r));
  t.after(() => {
    other.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await withClient(socket, async (c) => {
    await assert.rejects(c.status(), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.message, `${socket} sent 28 bytes that are no sockmesh API frame, then closed the connection: ` +
        'is it a sockmesh agent\'s api socket? (--socket, SOCKMESH_API_SOCKET)');
      return true;
    });
  });
});

// ---- the compiled CLI against the test server -------------------------------------

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Async on purpose: the server lives in this process, a sync spawn would deadlock it. */
function cli(args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('CLI: `sockmesh services -o json` prints the services the agent serves', () =>
  withHarness(async ({ socket }) => {
    const r = await cli(['services', '--socket', socket, '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { items: SERVICES });
  }));

test('CLI: unknown service exits 1 naming the known ones; no agent exits 1 with the hint', () =>
  withHarness(async ({ socket, dir }) => {
    const r = await cli(['backends', 'nope', '--socket', socket]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'sockmesh: service default/nope not found (known: default/web, shop/cart)\n');

    const gone = path.join(dir, 'gone.sock');
    const g = await cli(['status', '--socket', gone]);
    assert.equal(g.code, 1);
    assert.match(g.stderr, /agent is not running at .*gone\.sock/);
  }));

test('CLI: `edges` lists client sides by default, averages per measured connection; filters by workload, service and side', () =>
  withHarness(async ({ socket }) => {
    const t = await cli(['edges', '--socket', socket]);
    assert.equal(t.code, 0, t.stderr);
    const rows = t.stdout.split('\n').filter((l) => l !== '');
    assert.match(rows[0]!, /^WORKLOAD\s+SERVICE\s+BACKEND\s+CONNS\s+FAILED\s+CONNECT\s+SRTT\s+BYTES\s+RESETS$/);
    assert.equal(rows.length, 3, 'the two client edges');
    // 1500 µs over 10 connects, 900 µs over 9 SRTT samples, 4 KiB + 1 MiB, one reset.
    assert.match(rows[1]!, /^default\/client\s+default\/web:http\s+10\.0\.0\.1:8080\s+10\s+1\s+150µs\s+100µs\s+1\.0MiB\s+1$/);
    assert.match(rows[2]!, /^shop\/cart\s+default\/web:http\s+\[fd00::2\]:8080\s+3\s+0\s+20µs\s+-\s+30B\s+0$/, 'no SRTT sample: -');

    const w = await cli(['edges', '--socket', socket, '--side', 'all', '-o', 'wide']);
    const wrows = w.stdout.split('\n').filter((l) => l !== '');
    assert.match(wrows[0]!, /^SIDE\s+WORKLOAD\s.*\sRESETS\s+SENT\s+RECEIVED\s+RETRANS\s+TIMEOUTS\s+LAST$/);
    assert.equal(wrows.length, 4);
    assert.match(wrows[2]!, /^server\s+default\/web\s+default\/web:http\s.*\s1\.0MiB\s+4\.0KiB\s+0\s+0\s+\S+$/);

    const j = await cli(['edges', '--socket', socket, '-o', 'json', '--workload', 'shop/cart']);
    assert.deepEqual((JSON.parse(j.stdout) as { items: { key: string }[] }).items.map((e) => e.key), ['client|shop/cart|default/web:http|[fd00::2]:8080']);
    const s = await cli(['edges', '--socket', socket, '-o', 'json', '--service', 'web', '--side', 'server']);
    assert.deepEqual((JSON.parse(s.stdout) as { items: { key: string }[] }).items.map((e) => e.key), ['server|default/web|default/web:http|10.0.0.1:8080']);
    const none = await cli(['edges', '--socket', socket, '--service', 'web', '--workload', 'shop/nobody']);
    assert.deepEqual([none.code, none.stdout, none.stderr], [0, '', 'No edges found from workload shop/nobody (NAMESPACE/NAME, as in the mesh file).\n']);
    const typo = await cli(['edges', '--socket', socket, '--service', 'shop/nope']);
    assert.deepEqual([typo.code, typo.stdout, typo.stderr], [1, '', 'sockmesh: service shop/nope not found (known: default/web, shop/cart)\n'], 'a typo is not "no traffic"');
    const bad = await cli(['edges', '--socket', socket, '--workload', 'a/b/c']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--workload must be NAME or NAMESPACE\/NAME, got "a\/b\/c"/);
  }));

test('CLI: `edges --watch` lists again every interval under the time it read them, and Ctrl-C ends it cleanly', () =>
  withHarness(async ({ socket }) => {
    const child = spawn(process.execPath, [CLI, 'edges', '--socket', socket, '--watch', '0.5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const lists = (): number => (out.match(/^WORKLOAD\s+SERVICE/gm) ?? []).length;
    const deadline = Date.now() + 15_000;
    while (lists() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    process.kill(child.pid!, 'SIGINT');
    assert.equal(await exited, 0, 'Ctrl-C is how a watch ends');
    assert.ok(lists() >= 3, `three lists in time: ${out}`);
    assert.equal((out.match(/^\d{4}-\d\d-\d\dT\S+Z$/gm) ?? []).length, lists(), 'each under its time');
    const bad = await cli(['edges', '--socket', socket, '--watch', '0']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--watch takes seconds between 0.5 and 86400, got "0"/);
  }));

test('CLI: `connections` shows each record\'s workload and service by name (wide: backend too); filters by name', () =>
  withHarness(async ({ socket }) => {
    const t = await cli(['connections', '--socket', socket]);
    assert.equal(t.code, 0, t.stderr);
    const rows = t.stdout.split('\n').filter((l) => l !== '');
    assert.match(rows[0]!, /^TIME\s+KIND\s+SIDE\s+WORKLOAD\s+SERVICE\s+LOCAL\s+REMOTE\s+VIP\s/);
    assert.equal(rows.length, 1 + RECORDS.length);
    assert.match(rows[1]!, /^\d\d:\d\d:\d\d\.250\s+closed\s+client\s+default\/client\s+default\/web:http\s+10\.0\.0\.9:40000\s/);
    assert.match(rows[3]!, /^\S+\s+open\s+server\s+shop\/cart\s+-\s+\[fd00::2\]:8080\s/, 'non-service traffic has no service name');

    const last2 = await cli(['connections', '--socket', socket, '-o', 'json', '--limit', '2']);
    assert.deepEqual((JSON.parse(last2.stdout) as { items: { cookie: string }[] }).items.map((r) => r.cookie),
      RECORDS.slice(-2).map((r) => r.cookie.toString()), 'the newest two, still oldest first');
    const badLimit = await cli(['connections', '--socket', socket, '--limit', '0']);
    assert.deepEqual([badLimit.code, badLimit.stderr], [1, 'sockmesh: --limit takes a whole number of records >= 1, got "0"\n']);

    const w = await cli(['connections', '--socket', socket, '-o', 'wide', '--service', 'web']);
    assert.equal(w.code, 0, w.stderr);
    const wrows = w.stdout.split('\n').filter((l) => l !== '');
    assert.match(wrows[0]!, /\sWORKLOAD\s.*\sSERVICE\s+BACKEND-ID\s+BACKEND\s/);
    assert.equal(wrows.length, 1 + RECORDS.filter((r) => r.serviceId === 7).length, 'only default/web records');
    for (const r of wrows.slice(1)) assert.match(r, /\sdefault\/client\s.*\s7\s+default\/web:http\s+3\s+10\.0\.0\.1:8080\s/);

    const j = await cli(['connections', '--socket', socket, '-o', 'json', '--workload', 'shop/cart']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual((JSON.parse(j.stdout) as { items: { labels: unknown }[] }).items.map((r) => r.labels), [
      { side: 'server', workload: 'shop/cart', service: '', backend: '' },
    ]);
  }));

test('CLI: `connections --follow -o json` prints the replay, then live records, one per line', () =>
  withHarness(async ({ socket, view }) => {
    const child = spawn(process.execPath, [CLI, 'connections', '--follow', '--socket', socket, '-o', 'json', '--workload', 'client']);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const lines = (): string[] => out.split('\n').filter((l) => l !== '');
    const replay = RECORDS.filter((r) => r.cgroupId === 1001);
    await waitFor(() => view.followers.size === 1 && lines().length === replay.length, `replay (stderr: ${err})`, 15_000);
    view.push(record(50));
    await waitFor(() => lines().length === replay.length + 1, 'the live record');
    const last = JSON.parse(lines().at(-1)!) as { cookie: string; kind: string; labels: unknown };
    assert.equal(last.cookie, (0xffff_ffff_ffff_ff00n + 50n).toString());
    assert.equal(last.kind, 'close');
    assert.deepEqual(last.labels, CLIENT_LABELS);
    child.kill('SIGINT');
    assert.equal(await exited, 0, err);
    await waitFor(() => view.followers.size === 0, 'unsubscribed');
  }));
