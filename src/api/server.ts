/**
 * The agent's local API server: unix socket, length-delimited protobuf
 * envelopes (schema.ts), answers from an AgentView. It runs inside the agent,
 * so nothing a client sends may throw out of here: bad frames and failing
 * views become Error responses, an unparseable stream closes only that
 * connection, and follow callbacks (called from the agent's record path)
 * catch everything.
 */
import net from 'node:net';
import type { AgentView, ConnectionFilter, NamedRecord } from '../agent/view';
import { FrameError, FrameReader, MAX_REQUEST_FRAME } from './frame';
import { ApiCall, ApiErrorBody, ApiResult, decodeRequest, encodeResponse } from './schema';
import { bindSocket, prepareSocketPath, unlinkIfOurs } from './socket';

export interface ApiServerOptions {
  /** Where the server reports what it drops (bad clients, slow followers). */
  log?: (msg: string) => void;
  /** Concurrent client connections; node closes any beyond this right after accepting them. */
  maxConnections?: number;
  /** Bytes queued to one client before its follow streams are cut off. */
  maxBacklogBytes?: number;
}

export interface ApiServer {
  readonly path: string;
  close(): Promise<void>;
}

const DEFAULT_MAX_CONNECTIONS = 64;
const DEFAULT_MAX_BACKLOG = 4 << 20;

class NotFound extends Error {}
/** The client asked for something it cannot have: its error, not the agent's. */
class BadRequest extends Error {}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One client connection: its frames, its follow subscriptions. */
class Connection {
  private readonly reader = new FrameReader(MAX_REQUEST_FRAME);
  private readonly follows = new Map<number, () => void>();
  private closed = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly view: AgentView,
    private readonly opts: Required<ApiServerOptions>,
  ) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('end', () => this.onEnd());
    // EPIPE/ECONNRESET from a vanished client: 'close' follows and cleans up.
    sock.on('error', () => undefined);
    sock.on('close', () => this.dispose());
  }

  /** Drops the client: follows stop, the socket goes. */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const unsubscribe of this.follows.values()) unsubscribe();
    this.follows.clear();
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      // The stream has no frame boundaries left to trust: say why, then hang up.
      const code = err instanceof FrameError && err.reason === 'too_large' ? 'frame_too_large' : 'bad_request';
      this.opts.log(`api: dropping client: ${message(err)}`);
      this.fatal({ code, message: message(err) });
      return;
    }
    for (const frame of frames) {
      if (this.closed) return;
      this.onFrame(frame);
    }
  }

  private onEnd(): void {
    // The server is half-open capable so an error can still be sent here.
    try {
      this.reader.end();
      this.sock.end();
    } catch (err) {
      this.fatal({ code: 'bad_request', message: message(err) });
    }
  }

  /** An error for id 0 (not tied to a request), then close once it is flushed. */
  private fatal(error: ApiErrorBody): void {
    this.send(0, { result: 'error', error });
    // Destroy once flushed: a client that never closes its side must not hold the socket.
    this.sock.end(() => this.sock.destroy());
    this.sock.pause();
    // Later 'data' must not be parsed; dispose() on 'close' does the rest.
    this.sock.removeAllListeners('data');
  }

  private send(id: number, body: ApiResult): void {
    if (this.closed || !this.sock.writable) return;
    this.sock.write(encodeResponse({ id, body }));
  }

  private onFrame(frame: Buffer): void {
    const req = decodeRequest(frame);
    if ('invalid' in req) {
      this.send(req.id, { result: 'error', error: req.invalid });
      return;
    }
    try {
      this.dispatch(req.id, req.call);
    } catch (err) {
      // A view that throws, or data the encoder refuses: the agent's bug, this client's error.
      const error: ApiErrorBody = err instanceof NotFound ? { code: 'not_found', message: err.message }
        : err instanceof BadRequest ? { code: 'bad_request', message: err.message } : { code: 'internal', message: message(err) };
      if (error.code === 'internal') this.opts.log(`api: ${req.call.method} failed: ${message(err)}`);
      this.send(req.id, { result: 'error', error });
    }
  }

  private dispatch(id: number, call: ApiCall): void {
    switch (call.method) {
      case 'status':
        return this.send(id, { result: 'status', status: this.view.status() });
      case 'listServices':
        return this.send(id, { result: 'listServices', services: this.view.services() });
      case 'listBackends': {
        const backends = this.view.backends(call.service);
        if (!backends) throw new NotFound(`service ${call.service} not found`);
        return this.send(id, { result: 'listBackends', backends });
      }
      case 'listEdges':
        return this.send(id, { result: 'listEdges', edges: this.view.edges() });
      case 'listConnections':
        return this.send(id, { result: 'listConnections', records: this.view.connections(call.filter) });
      case 'listOpenConnections':
        return this.send(id, { result: 'listOpenConnections', records: this.view.openConnections(call.filter) });
      case 'follow':
        return this.follow(id, call.filter, call.replayRecent);
    }
  }

  /**
   * Takes the replay and subscribes in one step (no record can fall between
   * them), sends the replay, then `subscribed`: the client can tell replayed
   * records from live ones. Records the view delivers during this wait in
   * `early`, so nothing arrives twice, out of order or never.
   */
  private follow(id: number, filter: ConnectionFilter, replayRecent: boolean): void {
    if (this.follows.has(id)) throw new BadRequest(`request id ${id} is already following on this connection: use a new id for each request`);
    let early: NamedRecord[] | undefined = [];
    const onRecord = (rec: NamedRecord): void => {
      if (early) {
        early.push(rec);
        return;
      }
      this.deliver(id, rec);
    };
    const recent = replayRecent ? this.view.connections(filter) : [];
    const unsubscribe = this.view.follow(filter, (rec) => {
      // Called from the agent's record path: nothing may escape.
      try {
        onRecord(rec);
      } catch (err) {
        this.opts.log(`api: follow ${id}: ${message(err)}`);
      }
    });
    this.follows.set(id, unsubscribe);
    try {
      for (const rec of recent) this.deliver(id, rec);
      if (!this.follows.has(id)) return; // cut off as a slow consumer during the replay
      this.send(id, { result: 'subscribed' });
    } catch (err) {
      // The client gets an error for this id (onFrame): it must not keep receiving records for it.
      unsubscribe();
      this.follows.delete(id);
      throw err;
    }
    const queued = early;
    early = undefined;
    for (const rec of queued) this.deliver(id, rec);
  }

  private deliver(id: number, rec: NamedRecord): void {
    if (this.closed || !this.follows.has(id)) return;
    if (this.sock.writableLength > this.opts.maxBacklogBytes) {
      // A follower that does not read would otherwise grow the agent's memory without bound.
      this.follows.get(id)?.();
      this.follows.delete(id);
      this.opts.log(`api: follow ${id}: client is not reading, stream stopped`);
      this.send(id, { result: 'error', error: { code: 'slow_consumer', message: `the client fell more than ${this.opts.maxBacklogBytes} bytes behind; follow stopped` } });
      return;
    }
    this.send(id, { result: 'record', record: rec });
  }
}

/**
 * Serves `view` on a unix socket at `socketPath` (mode 0600, directory
 * created 0700 if missing). Refuses to start if a live agent already serves
 * there; replaces the socket file of a dead one.
 */
export async function startApiServer(socketPath: string, view: AgentView, options: ApiServerOptions = {}): Promise<ApiServer> {
  const opts: Required<ApiServerOptions> = {
    log: options.log ?? (() => undefined),
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    maxBacklogBytes: options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG,
  };
  await prepareSocketPath(socketPath);
  const connections = new Set<Connection>();
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    const conn = new Connection(sock, view, opts);
    connections.add(conn);
    sock.on('close', () => connections.delete(conn));
  });
  server.maxConnections = opts.maxConnections;
  // After listen, errors (EMFILE on accept, ...) must not become an uncaught 'error' in the agent.
  server.on('error', (err) => opts.log(`api: server error: ${err.message}`));
  const { ino } = await bindSocket(server, socketPath);

  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        // server.close waits for open connections; followers never end on their own.
        server.close(() => resolve());
        for (const c of connections) c.dispose();
        unlinkIfOurs(socketPath, ino);
      });
      return closing;
    },
  };
}
