/**
 * The API socket's place on disk: an owner-only directory, an owner-only
 * socket file, a stale file from a dead agent replaced, a live agent left
 * alone. The socket is bound under a temporary name, chmod'ed, then renamed
 * into place, so there is no moment where it is reachable with the default
 * mode (chmod after listen would leave one; a process-wide umask would race
 * with the agent's other file writes).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** sun_path is 108 bytes on Linux, NUL included. */
export const MAX_SOCKET_PATH_BYTES = 107;

export class SocketPathError extends Error {
  override readonly name = 'SocketPathError';
}

function errno(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Whether something accepts connections at `socketPath`: 'live', 'stale' (nobody listening) or 'absent'. */
export function probeSocket(socketPath: string, timeoutMs = 1000): Promise<'live' | 'stale' | 'absent'> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    const timer = setTimeout(() => {
      sock.destroy();
      // Accepting but not completing the connect: something holds it; do not steal it.
      resolve('live');
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve('live');
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      const code = errno(err);
      if (code === 'ECONNREFUSED') resolve('stale');
      else if (code === 'ENOENT') resolve('absent');
      else reject(new SocketPathError(`cannot check ${socketPath}: ${err.message}`));
    });
  });
}

/**
 * Makes `socketPath` ready to be bound: the directory exists (created 0700
 * if missing; an existing one is left as the operator set it up), and no
 * live agent serves there. Throws SocketPathError with what to do otherwise.
 */
export async function prepareSocketPath(socketPath: string): Promise<void> {
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(`socket path ${socketPath} is longer than ${MAX_SOCKET_PATH_BYTES} bytes (the unix socket limit)`);
  }
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) {
    // Not ours to delete: a typo in --socket must not remove someone's file.
    throw new SocketPathError(`${socketPath} exists and is not a socket; refusing to replace it`);
  }
  const state = await probeSocket(socketPath);
  if (state === 'live') {
    throw new SocketPathError(`another sockmesh agent is already serving its API at ${socketPath}; stop it first or use a different socket path`);
  }
  // 'stale': left by an agent that died; the rename in bindSocket replaces it.
}

/**
 * Listens on `socketPath` with mode 0600: bind under a temporary name in the
 * same directory, chmod, rename over the final name (atomic, and it replaces
 * a stale socket file). Returns the inode, so close can tell the file is
 * still ours before unlinking it.
 */
let bindCount = 0;

export async function bindSocket(server: net.Server, socketPath: string): Promise<{ ino: number }> {
  // pid + counter: unique even for two servers of one process in one directory.
  const tmp = path.join(path.dirname(socketPath), `.sockmesh-${process.pid}-${bindCount++}.tmp`);
  if (Buffer.byteLength(tmp) > MAX_SOCKET_PATH_BYTES) {
    throw new SocketPathError(`socket directory ${path.dirname(socketPath)} is too deep for a unix socket (${MAX_SOCKET_PATH_BYTES} bytes at most)`);
  }
  fs.rmSync(tmp, { force: true });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(tmp, () => {
      server.off('error', onError);
      resolve();
    });
  });
  try {
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, socketPath);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { ino: fs.statSync(socketPath).ino };
}

/** Removes the socket file if it is still the one we bound (another agent may have taken the path since). */
export function unlinkIfOurs(socketPath: string, ino: number): void {
  try {
    if (fs.lstatSync(socketPath).ino === ino) fs.unlinkSync(socketPath);
  } catch {
    // already gone
  }
}
