// `flotilla exec POD [-c C] -- CMD...`: runs a command in a pod's container through the server (which asks the
// pod's agent); prints its output and exits with the command's exit code.
import { apiPath, resourceByCliName } from '../api-types/index.js';
import { stringFlag, UsageError } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

const pods = resourceByCliName('pods')!;

export interface ExecAnswer { stdout: string; stderr: string; exitCode: number }

export const execCommand: CliCommand = {
  summary: 'run a command in a pod\'s container and exit with its exit code',
  usage: 'flotilla exec POD [-c CONTAINER] [-n NS] -- COMMAND [ARG...]',
  flags: [...connectionFlags, { name: 'namespace', short: 'n', kind: 'string' }, { name: 'container', short: 'c', kind: 'string' }],
  run: async (a, io) => {
    const [pod, ...extra] = a.positionals;
    if (!pod) throw new UsageError('name the pod to run the command in');
    if (extra.length > 0) throw new UsageError(`put the command after "--" (got ${extra.join(' ')} before it)`);
    if (a.rest.length === 0) throw new UsageError('give the command after "--", e.g. flotilla exec web -- ls /');
    const container = stringFlag(a, 'container');
    const client = clientFor(a, io);
    try {
      const r = await client.request<ExecAnswer>('POST', `${apiPath(pods, stringFlag(a, 'namespace') ?? 'default', pod)}/exec`, {
        ...(container ? { container } : {}), command: a.rest,
      });
      if (r.stdout) io.out(r.stdout);
      if (r.stderr) io.err(r.stderr);
      return r.exitCode;
    } finally {
      client.close();
    }
  },
};
