import net from 'node:net';

/** Polls `pred` until true; throws naming `what` on timeout. */
export async function waitFor(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A loopback port free right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** An IPv4 address held in network order in a u32 read little-endian from a record. */
export function ipv4(u32: number): string {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(u32 >>> 0);
  return [...b].join('.');
}
