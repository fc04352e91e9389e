// `flotilla config`: the contexts of the CLI config file (cli/config.ts), listed, switched and removed as
// `kubectl config` does it, with kubectl's messages.
import { stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import type { CliCommand, Io } from './command.js';
import { configPath, readCliConfig, writeCliConfig } from './config.js';
import { renderTable } from './printers.js';

async function runConfigCommand(a: ParsedArgs, io: Io): Promise<number> {
  const [sub, name, ...extra] = a.positionals;
  const path = configPath(io.env);
  const config = readCliConfig(path);
  const oneName = (what: string): string => {
    if (!name || extra.length > 0) throw new UsageError(`config ${what} takes one context name`);
    return name;
  };
  switch (sub) {
    case 'get-contexts': {
      const output = stringFlag(a, 'output');
      if (output !== undefined && output !== 'name') throw new UsageError(`--output: "${output}" is not supported by get-contexts (name)`);
      const names = Object.keys(config.contexts).filter((n) => !name || n === name).sort();
      if (name && names.length === 0) {
        io.err(`flotilla config: context "${name}" not found in ${path}\n`);
        return 1;
      }
      if (output === 'name') io.out(names.map((n) => `${n}\n`).join(''));
      else io.out(renderTable(['CURRENT', 'NAME', 'SERVER'], names.map((n) => [n === config.currentContext ? '*' : '', n, config.contexts[n]!.server])));
      return 0;
    }
    case 'current-context': {
      if (extra.length > 0 || name) throw new UsageError('config current-context takes no arguments');
      if (config.currentContext === undefined) {
        io.err(`flotilla config: current-context is not set in ${path}\n`);
        return 1;
      }
      io.out(`${config.currentContext}\n`);
      return 0;
    }
    case 'use-context': {
      const wanted = oneName('use-context');
      if (!config.contexts[wanted]) {
        io.err(`flotilla config: no context exists with the name: "${wanted}" in ${path}${contextList(config.contexts)}\n`);
        return 1;
      }
      writeCliConfig(io.env, { ...config, currentContext: wanted });
      io.out(`Switched to context "${wanted}".\n`);
      return 0;
    }
    case 'delete-context': {
      const doomed = oneName('delete-context');
      if (!config.contexts[doomed]) {
        io.err(`flotilla config: cannot delete context ${doomed}, not in ${path}${contextList(config.contexts)}\n`);
        return 1;
      }
      const { [doomed]: _, ...contexts } = config.contexts;
      const wasCurrent = config.currentContext === doomed;
      writeCliConfig(io.env, { contexts, ...(wasCurrent || config.currentContext === undefined ? {} : { currentContext: config.currentContext }) });
      if (wasCurrent) io.err('warning: this removed your active context, use "flotilla config use-context" to select a different one\n');
      io.out(`deleted context ${doomed} from ${path}\n`);
      return 0;
    }
    default:
      throw new UsageError(`unknown config subcommand "${sub ?? ''}" (get-contexts, use-context, current-context, delete-context)`);
  }
}

function contextList(contexts: Record<string, unknown>): string {
  const names = Object.keys(contexts).sort();
  return names.length ? ` (contexts: ${names.join(', ')})` : ' (it has no contexts)';
}

export const configCommand: CliCommand = {
  summary: 'list, switch and remove the contexts (server + token) of the CLI config file (FLOTILLA_CONFIG, default ~/.flotilla/config)',
  usage: 'flotilla config get-contexts [NAME] [-o name] | current-context | use-context NAME | delete-context NAME',
  flags: [{ name: 'output', short: 'o', kind: 'string' }],
  run: runConfigCommand,
};
