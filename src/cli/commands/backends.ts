/** `sockmesh backends SERVICE`: a service's backends with weights, shares and telemetry. */
import { Command } from 'commander';
import { ApiClient, ApiError } from '../../api/client';
import type { BackendView } from '../../agent/view';
import { renderBackends } from '../render/backends';
import { apiFlags, namespacedName, serviceNotFound, withApiOptions, withClient, writeList } from '../api-command';

async function fetchBackends(client: ApiClient, service: string): Promise<BackendView[]> {
  try {
    return await client.backends(service);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'not_found') throw await serviceNotFound(client, service);
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
