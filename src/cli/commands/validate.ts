/**
 * `sockmesh validate FILE...`: checks mesh files as the agent would before
 * applying them - schema, cross-checks, agent settings, room in the kernel
 * tables - with no agent and no kernel access. A Kubernetes manifest is
 * checked by the mesh files its ConfigMaps carry. Exit 1 if any is invalid.
 */
import { readMeshText } from '../../config/load';
import { Command, Option } from 'commander';
import { checkMesh, embeddedMeshes, MeshCheck } from '../../agent/check';
import { Dataplane } from '../../dataplane/dataplane';
import { isOutputFormat, OUTPUT_FORMATS } from '../render/output';
import { renderChecks } from '../render/validate';

export function validateCommand(): Command {
  return new Command('validate')
    .description('check mesh files as the agent would before applying them (schema, settings, room in the kernel tables); no kernel access. ' +
      'Exits 0 when all are valid, 1 when one is invalid, 2 when one cannot be read')
    .argument('<files...>', 'mesh files (YAML)')
    .addOption(new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table'))
    .action((files: string[], _opts: unknown, cmd: Command) => {
      const output: unknown = cmd.opts().output;
      if (!isOutputFormat(output)) throw new Error(`unexpected output format ${String(output)}`);
      const room = Dataplane.tableRoom();
      // A path that is wrong is not a mesh that is wrong: CI can tell them apart by the exit code.
      let unreadable = false;
      const checks = files.flatMap((file): MeshCheck[] => {
        let text: string;
        try {
          text = readMeshText(file);
        } catch (err) {
          unreadable = true;
          return [{ file, valid: false, errors: [`${file}: cannot read: ${(err as Error).message}`] }];
        }
        // A Kubernetes manifest: the mesh files its ConfigMaps carry, positions in the manifest.
        const embedded = embeddedMeshes(text, file);
        if (embedded === undefined) return [checkMesh(text, file, room)];
        if (embedded.length === 0) return [{ file, valid: false, errors: [`${file}: its ConfigMaps carry no mesh file (a data value with kind: Mesh)`] }];
        return embedded.map((e) => ('error' in e ? { file: e.label, valid: false, errors: [e.error] }
          : checkMesh(e.text, e.label, room, e.origin ? { ...e.origin, positionsIn: file } : undefined)));
      });
      process.stdout.write(renderChecks(output, checks));
      process.exitCode = unreadable ? 2 : checks.every((c) => c.valid) ? 0 : 1;
    });
}
