/** `sockmesh connections`: recent closed/failed connections, the open ones with --open, or a live stream with --follow. */
import { Command } from 'commander';
import type { ConnectionFilter, NamedRecord } from '../../agent/view';
import type { ApiClient } from '../../api/client';
import { ConnectionStream, renderConnections } from '../render/connections';
import { ApiFlags, apiFlags, checkServiceFilter, namespacedName, untilInterrupted, UsageError, withApiOptions, withClient, writeList } from '../api-command';

interface ConnectionsFlags extends ApiFlags {
  filter: ConnectionFilter;
  follow: boolean;
  open: boolean;
  /** the newest N only */
  limit: number | undefined;
}

function limitOf(raw: unknown): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit takes a whole number of records >= 1, got "${String(raw)}"`);
  return n;
}

function parseFlags(raw: Record<string, unknown>): ConnectionsFlags {
  const filter: ConnectionFilter = {};
  if (typeof raw.workload === 'string') filter.workload = namespacedName(raw.workload, '--workload');
  if (typeof raw.service === 'string') filter.service = namespacedName(raw.service, '--service');
  const open = raw.open === true;
  if (open && raw.follow === true) throw new UsageError('--open and --follow: choose one (--follow streams every record, open connections\' interim ones included)');
  const limit = limitOf(raw.limit);
  if (limit !== undefined && raw.follow === true) throw new UsageError('--limit and --follow: --follow replays the recent records, then streams; use --limit without it');
  return { ...apiFlags(raw), filter, follow: raw.follow === true, open, limit };
}

/**
 * Recent records first, then new ones as they come, until the agent goes
 * away (exit 1) or the reader does (Ctrl-C, or a closed pipe, which main.ts
 * turns into SIGTERM: exit 0).
 */
async function follow(client: ApiClient, flags: ConnectionsFlags): Promise<void> {
  // A stream that waits forever on a misspelt service would look like quiet traffic.
  await checkServiceFilter(client, flags.filter.service, 0);
  const out = new ConnectionStream(flags.output);
  const replay: NamedRecord[] = [];
  let live = false;
  const stream = await client.follow(
    flags.filter,
    (rec) => {
      if (live) process.stdout.write(out.next(rec));
      else replay.push(rec);
    },
    { replayRecent: true },
  );
  // Replayed records all came before `subscribed`: column widths can fit them.
  process.stdout.write(out.start(replay));
  live = true;
  await untilInterrupted(() => stream.close(), () => stream.done);
}

function newest<T>(records: T[], limit: number | undefined): T[] {
  return limit === undefined ? records : records.slice(-limit);
}

export function connectionsCommand(): Command {
  return withApiOptions(
    new Command('connections')
      .description('list recent closed and failed connections seen on this node, or follow new ones')
      .option('--workload <workload>', 'only connections of this workload (NAMESPACE/NAME, or NAME in default)')
      .option('--service <service>', 'only connections to this service (NAMESPACE/NAME, or NAME in default)')
      .option('-f, --follow', 'after the recent ones, print new records (interim ones included) as they arrive', false)
      .option('--open', 'the connections open now, as of their latest report (those open for a report interval or more)', false)
      .option('--limit <n>', 'only the newest N records (they list oldest first, as a log)'),
  ).action((_opts: unknown, cmd: Command) =>
    withClient(
      () => parseFlags(cmd.opts()),
      async (client, flags) => {
        if (flags.follow) return follow(client, flags);
        if (flags.open) {
          const open = newest(await client.openConnections(flags.filter), flags.limit);
          await checkServiceFilter(client, flags.filter.service, open.length);
          return writeList(flags, open.length, renderConnections(flags.output, open),
            'No open connection has reported yet (they report every report interval).');
        }
        const records = newest(await client.connections(flags.filter), flags.limit);
        await checkServiceFilter(client, flags.filter.service, records.length);
        writeList(flags, records.length, renderConnections(flags.output, records), 'No connections recorded.');
      },
    ),
  );
}
