import { readFileSync, writeFileSync, mkdirSync, existsSync, chmodSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

export interface ClientConfig { server: string; token?: string }

export const DEFAULT_SERVER = 'http://127.0.0.1:7400';

/** ~/.flotilla/config, or FLOTILLA_CONFIG when set. */
export function configPath(env: NodeJS.ProcessEnv): string {
  return env.FLOTILLA_CONFIG ?? join(env.HOME ?? homedir(), '.flotilla', 'config');
}

/** Where the CLI finds its server and token: flags, then FLOTILLA_SERVER/FLOTILLA_TOKEN, then the config file. */
export function resolveClientConfig(flags: { server?: string; token?: string }, env: NodeJS.ProcessEnv): ClientConfig {
  const file = readConfigFile(configPath(env));
  const server = flags.server ?? env.FLOTILLA_SERVER ?? file.server ?? DEFAULT_SERVER;
  const token = flags.token ?? env.FLOTILLA_TOKEN ?? file.token;
  return { server, ...(token ? { token } : {}) };
}

function readConfigFile(path: string): Partial<ClientConfig> {
  if (!existsSync(path)) return {};
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: expected a mapping with server and token`);
  const { server, token, ...unknown } = doc as Record<string, unknown>;
  const extra = Object.keys(unknown);
  if (extra.length > 0) throw new Error(`${path}: unknown field ${extra.map((k) => `"${k}"`).join(', ')} (expected server, token)`);
  if (server !== undefined && typeof server !== 'string') throw new Error(`${path}: server must be a string`);
  if (token !== undefined && typeof token !== 'string') throw new Error(`${path}: token must be a string`);
  return { ...(server ? { server } : {}), ...(token ? { token } : {}) };
}

/** Writes the CLI config (mode 0600: it holds a token). */
export function writeClientConfig(env: NodeJS.ProcessEnv, config: ClientConfig): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, toYaml(config), { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
