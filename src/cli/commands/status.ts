/** `sockmesh status`: the agent's state (dataplane, config, telemetry counters). */
import { Command } from 'commander';
import { renderStatus } from '../render/status';
import { apiFlags, withApiOptions, withClient } from '../api-command';

export function statusCommand(): Command {
  return withApiOptions(new Command('status').description("show the node agent's state: dataplane, config, telemetry counters")).action(
    (_opts: unknown, cmd: Command) =>
      withClient(
        () => apiFlags(cmd.opts()),
        async (client, flags) => {
          process.stdout.write(renderStatus(flags.output, await client.status()));
        },
      ),
  );
}
