/**
 * The demo's workloads, one process each, run inside their own network
 * namespace and cgroup by `sockmesh demo`:
 *   workload.js server <ip> <port> <name> [callUrl ...]  HTTP server; each request
 *                                                         first calls every callUrl
 *   workload.js loadgen <url> <intervalMs>                GETs url forever
 * Every request uses a fresh connection, so every call is a connection the
 * mesh balances and measures.
 */
import http from 'node:http';

const [role, ...args] = process.argv.slice(2);

function get(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

if (role === 'server') {
  const [ip, port, name, ...calls] = args;
  http.createServer(async (_req, res) => {
    const codes = [];
    for (const url of calls) codes.push(await get(url));
    const ok = codes.every((c) => c === 200);
    res.writeHead(ok ? 200 : 502, { 'content-type': 'text/plain', connection: 'close' });
    res.end(`${name} ${ok ? 'ok' : 'upstream failed'}\n`);
  }).listen(Number(port), ip);
} else if (role === 'loadgen') {
  const [url, interval] = args;
  const loop = async (): Promise<void> => {
    for (;;) {
      await get(url!);
      await new Promise((r) => setTimeout(r, Number(interval)));
    }
  };
  void loop();
} else {
  process.stderr.write('usage: workload.js server <ip> <port> <name> [url...] | loadgen <url> <intervalMs>\n');
  process.exit(2);
}
process.on('SIGTERM', () => process.exit(0));
