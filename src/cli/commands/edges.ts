/**
 * `sockmesh edges`: who talks to which service and backend on this node, with
 * connections, failures, connect time, SRTT, bytes and resets per edge - the
 * node's service map. Client sides by default: with both ends enrolled, the
 * server side of each connection is a second row for the same traffic.
 */
import { Command, Option } from 'commander';
import { renderEdges } from '../render/edges';
import { apiFlags, namespacedName, withApiOptions, withClient, writeList } from '../api-command';

const SIDES = ['client', 'server', 'all'] as const;
type SideFilter = (typeof SIDES)[number];

export function edgesCommand(): Command {
  return withApiOptions(
    new Command('edges')
      .description('list the edges this node saw (workload -> service -> backend) with connections, failures, latency, bytes and resets')
      .option('--workload <name>', 'only edges from this workload (NAMESPACE/NAME, or NAME in namespace default)')
      .option('--service <name>', 'only edges to this service (NAMESPACE/NAME, or NAME in namespace default)')
      .addOption(new Option('--side <side>', 'which end of the connections').choices(SIDES).default('client')),
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
        };
      },
      async (client, flags) => {
        const edges = (await client.edges()).filter((e) =>
          (flags.side === 'all' || e.labels.side === flags.side) &&
          (flags.workload === undefined || e.labels.workload === flags.workload) &&
          // Edge services are "namespace/name:port".
          (flags.service === undefined || e.labels.service.startsWith(`${flags.service}:`)));
        writeList(flags, edges.length, renderEdges(flags.output, edges), 'No edges found.');
      },
    ),
  );
}
