/**
 * `sockmesh edges`: who talks to which service and backend on this node, with
 * connections, failures, connect time, SRTT, bytes and resets per edge - the
 * node's service map. Client sides by default: with both ends enrolled, the
 * server side of each connection is a second row for the same traffic.
 * --watch lists again every few seconds, as `kubectl get -w` or watch(1).
 */
import { Command, Option } from 'commander';
import type { ApiClient } from '../../api/client';
import type { Edge } from '../../telemetry/aggregator';
import { renderEdges } from '../render/edges';
import { apiFlags, checkServiceFilter, namespacedName, UsageError, untilInterrupted, withApiOptions, withClient, writeList } from '../api-command';
import { OutputFormat, toJsonLine, toYamlDoc } from '../render/output';

const SIDES = ['client', 'server', 'all'] as const;
type SideFilter = (typeof SIDES)[number];

interface EdgeFilter {
  side: SideFilter;
  workload?: string | undefined;
  service?: string | undefined;
}

function wanted(e: Edge, f: EdgeFilter): boolean {
  return (f.side === 'all' || e.labels.side === f.side) &&
    (f.workload === undefined || e.labels.workload === f.workload) &&
    // Edge services are "namespace/name:port".
    (f.service === undefined || e.labels.service.startsWith(`${f.service}:`));
}

/** --watch bounds: faster polls the agent for nothing; slower overflows a timer (2^31 ms). */
const WATCH_MIN_S = 0.5;
const WATCH_MAX_S = 86_400;

/** Seconds between two lists of --watch (the flag alone means 2). */
function watchSeconds(raw: unknown): number | undefined {
  if (raw === undefined || raw === false) return undefined;
  if (raw === true) return 2;
  const s = Number(raw);
  if (!Number.isFinite(s) || s < WATCH_MIN_S || s > WATCH_MAX_S) {
    throw new UsageError(`--watch takes seconds between ${WATCH_MIN_S} and ${WATCH_MAX_S}, got "${String(raw)}"`);
  }
  return s;
}

/**
 * One list of --watch. Tables under the time they were read; json one object
 * per line and yaml one document each (`---`), the time inside, so a stream
 * of them parses (jq, yq) as --follow's does.
 */
export function watchFrame(format: OutputFormat, edges: readonly Edge[], showSide: boolean, at: Date): string {
  if (format === 'json') return toJsonLine({ time: at.toISOString(), items: edges });
  if (format === 'yaml') return toYamlDoc({ time: at.toISOString(), items: edges });
  return `${at.toISOString()}\n${renderEdges(format, edges, at.getTime(), showSide)}\n`;
}

/** The list again every `seconds`, each under the time it was read, until Ctrl-C (or a closed pipe: SIGTERM from main.ts) or the agent goes away. */
async function watch(client: ApiClient, flags: EdgeFilter & { output: Parameters<typeof renderEdges>[0] }, seconds: number): Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  await untilInterrupted(stop, async () => {
    while (!stopped) {
      const edges = (await client.edges()).filter((e) => wanted(e, flags));
      await checkServiceFilter(client, flags.service, edges.length);
      process.stdout.write(watchFrame(flags.output, edges, flags.side === 'all', new Date()));
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, seconds * 1000).unref();
      });
    }
  });
}

export function edgesCommand(): Command {
  return withApiOptions(
    new Command('edges')
      .description('list the edges this node saw (workload -> service -> backend) with connections, failures, latency, bytes and resets')
      .option('--workload <name>', 'only edges from this workload (NAMESPACE/NAME, or NAME in namespace default)')
      .option('--service <name>', 'only edges to this service (NAMESPACE/NAME, or NAME in namespace default)')
      .addOption(new Option('--side <side>', 'which end of the connections').choices(SIDES).default('client'))
      .option('-w, --watch [seconds]', 'list again every few seconds (default 2) until Ctrl-C'),
  ).action((_opts: unknown, cmd: Command) =>
    withClient(
      () => {
        const raw = cmd.opts();
        const side = SIDES.find((s) => s === raw.side);
        if (!side) throw new Error(`unexpected side ${String(raw.side)}`);
        return {
          ...apiFlags(raw),
          side: side as SideFilter,
          workload: typeof raw.workload === 'string' ? namespacedName(raw.workload, '--workload') : undefined,
          service: typeof raw.service === 'string' ? namespacedName(raw.service, '--service') : undefined,
          watch: watchSeconds(raw.watch),
        };
      },
      async (client, flags) => {
        if (flags.watch !== undefined) return watch(client, flags, flags.watch);
        const edges = (await client.edges()).filter((e) => wanted(e, flags));
        await checkServiceFilter(client, flags.service, edges.length);
        writeList(flags, edges.length, renderEdges(flags.output, edges, Date.now(), flags.side === 'all'),
          flags.workload !== undefined ? `No edges found from workload ${flags.workload} (NAMESPACE/NAME, as in the mesh file).` : 'No edges found.');
      },
    ),
  );
}
