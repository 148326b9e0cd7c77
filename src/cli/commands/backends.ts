/** `sockmesh backends SERVICE`: a service's backends with weights, shares and telemetry. */
import { Command } from 'commander';
import { ApiClient, ApiError } from '../../api/client';
import type { BackendView } from '../../agent/view';
import { renderBackends } from '../render/backends';
import { apiFlags, namespacedName, withApiOptions, withClient, writeList } from '../api-command';

/** Enough names to spot a typo without flooding the terminal. */
const KNOWN_SHOWN = 20;

/** The agent says only "not found"; the operator wants to see what exists. */
async function notFound(client: ApiClient, service: string): Promise<Error> {
  const names = (await client.services()).map((s) => s.name).sort();
  const shown = names.slice(0, KNOWN_SHOWN).join(', ');
  const more = names.length > KNOWN_SHOWN ? `, ... ${names.length - KNOWN_SHOWN} more` : '';
  return new Error(`service ${service} not found (known: ${names.length > 0 ? `${shown}${more}` : 'none'})`);
}

async function fetchBackends(client: ApiClient, service: string): Promise<BackendView[]> {
  try {
    return await client.backends(service);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found') throw await notFound(client, service);
    throw err;
  }
}

export function backendsCommand(): Command {
  return withApiOptions(
    new Command('backends')
      .description("list a service's backends: weight, share of new connections, connections and failures seen")
      .argument('<service>', 'NAMESPACE/NAME, or NAME in namespace default'),
  ).action((arg: string, _opts: unknown, cmd: Command) =>
    withClient(
      () => ({ ...apiFlags(cmd.opts()), service: namespacedName(arg, 'SERVICE') }),
      async (client, flags) => {
        const backends = await fetchBackends(client, flags.service);
        writeList(flags, backends.length, renderBackends(flags.output, backends), `No backends for service ${flags.service}.`);
      },
    ),
  );
}
