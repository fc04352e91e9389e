import { ApiClient } from '../client/client.js';
import { stringFlag } from './args.js';
import type { FlagSpec, ParsedArgs } from './args.js';
import { ConfigError, missingCaMessage, resolveClientConfig, type ClientConfig } from './config.js';

/** Where a command reads and writes; tests pass their own. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  readStdin: () => string;
  isTty: boolean;
  /** Whether stderr, where the agent logs, is a terminal (readable lines there, JSON otherwise); absent: no. */
  errIsTty?: boolean;
}

/** One `flotilla` subcommand: its help, the flags it accepts, and what it does; resolves to the exit code. */
export interface CliCommand {
  summary: string;
  usage: string;
  flags: FlagSpec[];
  run: (args: ParsedArgs, io: Io, signal: AbortSignal) => Promise<number>;
}

/** --server, --token, --ca and --context, which every command that talks to a server accepts. */
export const connectionFlags: FlagSpec[] = [{ name: 'server', kind: 'string' }, { name: 'token', kind: 'string' }, { name: 'ca', kind: 'string' }, { name: 'context', kind: 'string' }];

/**
 * An API client for the server, token and CA the flags, environment or config file name (cli/config.ts). When
 * the server comes from a config file with more than one context, one line on stderr says which one: stdout
 * stays what scripts read. An https server without a CA to verify it is refused, naming how to give one.
 */
/** The server, token and CA the connection flags, the environment and the CLI config give (cli/config.ts). */
export function clientConfigFor(a: ParsedArgs, io: Io): ClientConfig {
  return resolveClientConfig({ server: stringFlag(a, 'server'), token: stringFlag(a, 'token'), ca: stringFlag(a, 'ca'), context: stringFlag(a, 'context') }, io.env);
}

export function clientFor(a: ParsedArgs, io: Io): ApiClient {
  const cfg = clientConfigFor(a, io);
  if (cfg.context && cfg.context.contextCount > 1) io.err(`(context: ${cfg.context.name}, ${cfg.server})\n`);
  if (!cfg.ca && cfg.server.startsWith('https:')) throw new ConfigError(missingCaMessage(cfg.server));
  return new ApiClient(cfg.server, cfg.token, cfg.ca ? { tls: { ca: cfg.ca.pem } } : {});
}
