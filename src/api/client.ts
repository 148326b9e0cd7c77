/**
 * Client of the agent's local API (what the CLI uses). One unix socket
 * connection, requests multiplexed by id; every method returns the
 * TypeScript types of src/agent/view.ts, validated on the way in.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { AgentStatus, BackendView, ConnectionFilter, NamedRecord, ServiceView } from '../agent/view';
import type { Edge } from '../telemetry/aggregator';
import { FrameReader, MAX_RESPONSE_FRAME } from './frame';
import { ApiCall, ApiResult, ServerErrorCode, decodeResponse, encodeRequest } from './schema';

/** What went wrong: the agent's own error codes, or what happened on this side. */
export type ApiErrorCode =
  | ServerErrorCode
  /** nothing listens at the socket path */
  | 'not_running'
  | 'permission_denied'
  /** any other failure to connect */
  | 'unreachable'
  /** the connection ended before the answer */
  | 'closed'
  | 'timeout'
  /** the agent sent something this client cannot read */
  | 'protocol';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiClientOptions {
  /** Per unary request, and for a follow until it is subscribed. */
  timeoutMs?: number;
}

export interface FollowOptions {
  /** Deliver the recent matching records first, then new ones. */
  replayRecent?: boolean;
}

export interface FollowStream {
  /** Resolves when closed from this side; rejects if the agent ends the stream (error, disconnect). */
  readonly done: Promise<void>;
  /** Stops following. The protocol ends a follow by disconnecting, so this closes the client. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 10_000;

type ResultKind = ApiResult['result'];
type ResultOf<K extends ResultKind> = Extract<ApiResult, { result: K }>;

interface Pending {
  expect: ResultKind;
  resolve(body: ApiResult): void;
  reject(err: ApiError): void;
  timer: NodeJS.Timeout;
}

interface Follower {
  onRecord(rec: NamedRecord): void;
  /** set until subscribed: the follow() promise */
  start?: { resolve(): void; reject(err: ApiError): void; timer: NodeJS.Timeout };
  resolveDone(): void;
  rejectDone(err: ApiError): void;
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** sockaddr_un.sun_path holds 107 bytes and a NUL. */
const SUN_PATH_MAX = 107;

/** Why a path that is not an agent's socket is not one, if it can tell: the fix differs from "start the agent". */
function notASocket(socketPath: string): string | undefined {
  if (Buffer.byteLength(socketPath) > SUN_PATH_MAX) {
    return `${socketPath} is ${Buffer.byteLength(socketPath)} bytes long, more than a unix socket path can be (${SUN_PATH_MAX}): use a shorter --socket path`;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(socketPath);
  } catch {
    return undefined;
  }
  if (st.isSocket()) return undefined;
  return `${socketPath} is ${st.isDirectory() ? 'a directory' : st.isFile() ? 'a regular file' : 'not a socket'}, not the agent's unix socket: ` +
    'point --socket (or SOCKMESH_API_SOCKET) at the api socket the agent logged ("agent running ... api")';
}

/** The connect error an operator can act on. */
function connectError(socketPath: string, err: Error): ApiError {
  const hint = 'start it with `sockmesh agent`, or point at its socket with --socket PATH (or SOCKMESH_API_SOCKET)';
  const code = errnoOf(err);
  const wrongPath = code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ENOTSOCK' ? notASocket(socketPath) : undefined;
  if (wrongPath) return new ApiError('unreachable', wrongPath);
  switch (code) {
    case 'ENOENT':
      return new ApiError('not_running', `the sockmesh agent is not running at ${socketPath} (no such socket): ${hint}`);
    case 'ECONNREFUSED':
      return new ApiError('not_running', `the sockmesh agent is not running at ${socketPath} (the socket is stale: connection refused): ${hint}`);
    case 'EACCES':
    case 'EPERM':
      return new ApiError('permission_denied', `permission denied on ${socketPath}: the API socket is for the agent's user only (mode 0600); run this as that user (e.g. with sudo)`);
    default:
      return new ApiError('unreachable', `cannot connect to the sockmesh agent at ${socketPath}: ${err.message}`);
  }
}

export class ApiClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly followers = new Map<number, Follower>();
  private readonly reader = new FrameReader(MAX_RESPONSE_FRAME);
  private ended: ApiError | undefined;

  private constructor(
    private readonly sock: net.Socket,
    readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (err) => this.fail(this.lost(errnoOf(err) === 'EPIPE' ? 'closed the connection before reading the request' : `failed: ${err.message}`)));
    sock.on('close', () => this.fail(this.lost('closed the connection')));
  }

  /** The connection ended under us: what we got, and where to look next. */
  private lost(what: string): ApiError {
    const junk = this.reader.pending;
    if (junk > 0) {
      return new ApiError('protocol', `${this.socketPath} sent ${junk} bytes that are no sockmesh API frame, then ${what}: ` +
        'is it a sockmesh agent\'s api socket? (--socket, SOCKMESH_API_SOCKET)');
    }
    return new ApiError('closed', `the agent at ${this.socketPath} ${what}: its log says why (an agent that is stopping, or not a sockmesh agent's socket)`);
  }

  static connect(socketPath: string, opts: ApiClientOptions = {}): Promise<ApiClient> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(socketPath);
      const onError = (err: Error): void => reject(connectError(socketPath, err));
      sock.once('error', onError);
      sock.once('connect', () => {
        sock.off('error', onError);
        resolve(new ApiClient(sock, socketPath, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
      });
    });
  }

  status(): Promise<AgentStatus> {
    return this.call({ method: 'status' }, 'status').then((r) => r.status);
  }

  services(): Promise<ServiceView[]> {
    return this.call({ method: 'listServices' }, 'listServices').then((r) => r.services);
  }

  /** Backends of `service` (namespace/name); rejects with code 'not_found' for an unknown service. */
  backends(service: string): Promise<BackendView[]> {
    return this.call({ method: 'listBackends', service }, 'listBackends').then((r) => r.backends);
  }

  edges(): Promise<Edge[]> {
    return this.call({ method: 'listEdges' }, 'listEdges').then((r) => r.edges);
  }

  /** Recent records, each with the names the agent knows for its ids (labels). */
  connections(filter: ConnectionFilter = {}): Promise<NamedRecord[]> {
    return this.call({ method: 'listConnections', filter }, 'listConnections').then((r) => r.records);
  }

  /** Connections open now, as of their latest report (an interim record each); agents before 0.2 refuse it (unknown_method). */
  openConnections(filter: ConnectionFilter = {}): Promise<NamedRecord[]> {
    return this.call({ method: 'listOpenConnections', filter }, 'listOpenConnections').then((r) => r.records);
  }

  /**
   * Streams records to `onRecord`. Resolves once the agent has subscribed:
   * replayed records (if asked) have all been delivered by then, and every
   * record after that is new.
   */
  follow(filter: ConnectionFilter, onRecord: (rec: NamedRecord) => void, opts: FollowOptions = {}): Promise<FollowStream> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    let resolveDone!: () => void;
    let rejectDone!: (err: ApiError) => void;
    const done = new Promise<void>((res, rej) => {
      resolveDone = res;
      rejectDone = rej;
    });
    // Marks it handled for callers that never look at `done`; awaiting it still sees the rejection.
    done.catch(() => undefined);
    return new Promise<FollowStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.followers.delete(id);
        reject(new ApiError('timeout', `the agent did not start the follow within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.followers.set(id, {
        onRecord,
        start: { resolve: () => resolve({ done, close: () => this.close() }), reject, timer },
        resolveDone,
        rejectDone,
      });
      this.sock.write(encodeRequest({ id, call: { method: 'follow', filter, replayRecent: opts.replayRecent ?? false } }));
    });
  }

  /** Closes the connection; calls still waiting reject with 'closed', follows resolve `done`. */
  close(): void {
    this.fail(new ApiError('closed', 'the client closed the connection'), true);
  }

  private call<K extends ResultKind>(call: ApiCall, expect: K): Promise<ResultOf<K>> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise<ResultOf<K>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('timeout', `the agent at ${this.socketPath} did not answer ${call.method} within ${this.timeoutMs} ms: ` +
          'it may be busy (a large reload) or stuck - try again, then look at its log, or `sockmesh doctor`'));
      }, this.timeoutMs);
      this.pending.set(id, {
        expect,
        // route() checked body.result === expect, which is what ResultOf<K> means.
        resolve: (body) => resolve(body as ResultOf<K>),
        reject,
        timer,
      });
      this.sock.write(encodeRequest({ id, call }));
    });
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.fail(new ApiError('protocol', `unreadable stream from the agent: ${err instanceof Error ? err.message : String(err)}`));
      return;
    }
    for (const frame of frames) {
      if (this.ended) return;
      const res = decodeResponse(frame);
      if ('invalid' in res) {
        const err = new ApiError('protocol', `unreadable response from the agent: ${res.invalid}`);
        if (res.id === 0) this.fail(err);
        else this.settle(res.id, err);
        continue;
      }
      if (res.id === 0) {
        // Not tied to a request: the agent is about to hang up on this connection.
        this.fail(res.body.result === 'error' ? new ApiError(res.body.error.code, res.body.error.message) : new ApiError('protocol', 'agent sent a result for request 0'));
        continue;
      }
      this.route(res.id, res.body);
    }
  }

  private route(id: number, body: ApiResult): void {
    const follower = this.followers.get(id);
    if (follower) {
      this.routeFollow(id, follower, body);
      return;
    }
    const p = this.pending.get(id);
    // Unknown ids: answers to calls that already timed out.
    if (!p) return;
    if (body.result === 'error') this.settle(id, new ApiError(body.error.code, body.error.message));
    else if (body.result !== p.expect) this.settle(id, new ApiError('protocol', `agent answered ${body.result} to a ${p.expect} request`));
    else {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(body);
    }
  }

  private routeFollow(id: number, f: Follower, body: ApiResult): void {
    switch (body.result) {
      case 'subscribed':
        if (f.start) {
          clearTimeout(f.start.timer);
          f.start.resolve();
          delete f.start;
        }
        return;
      case 'record':
        try {
          f.onRecord(body.record);
        } catch (err) {
          // The caller's handler failed: stop the stream rather than throw out of a socket event.
          this.settle(id, new ApiError('closed', `follow handler failed: ${err instanceof Error ? err.message : String(err)}`));
        }
        return;
      case 'error':
        this.settle(id, new ApiError(body.error.code, body.error.message));
        return;
      default:
        this.settle(id, new ApiError('protocol', `agent answered ${body.result} to a follow request`));
    }
  }

  /** Ends one request (unary or follow) with an error. */
  private settle(id: number, err: ApiError): void {
    const p = this.pending.get(id);
    if (p) {
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(err);
    }
    const f = this.followers.get(id);
    if (f) {
      this.followers.delete(id);
      if (f.start) {
        clearTimeout(f.start.timer);
        f.start.reject(err);
      } else f.rejectDone(err);
    }
  }

  /** Ends everything: the first cause wins; `byUs` lets running follows end cleanly. */
  private fail(err: ApiError, byUs = false): void {
    if (this.ended) return;
    this.ended = err;
    this.sock.destroy();
    for (const id of [...this.pending.keys()]) this.settle(id, err);
    for (const [id, f] of [...this.followers]) {
      if (byUs && !f.start) {
        this.followers.delete(id);
        f.resolveDone();
      } else this.settle(id, err);
    }
  }
}
