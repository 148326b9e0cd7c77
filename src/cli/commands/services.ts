/** `sockmesh services`: the services this node load-balances. */
import { Command } from 'commander';
import { renderServices } from '../render/services';
import { apiFlags, withApiOptions, withClient, writeList } from '../api-command';

export function servicesCommand(): Command {
  return withApiOptions(new Command('services').description('list the services this node load-balances (VIPs, ports, backends)')).action(
    (_opts: unknown, cmd: Command) =>
      withClient(
        () => apiFlags(cmd.opts()),
        async (client, flags) => {
          const services = await client.services();
          writeList(flags, services.length, renderServices(flags.output, services), 'No services found.');
        },
      ),
  );
}
