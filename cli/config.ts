// The CLI config file (FLOTILLA_CONFIG, default ~/.flotilla/config): named contexts, kubeconfig style, each a
// server, the token for it and the file of the cluster CA to verify it with, and the current one.
//
//   current-context: up-shop
//   contexts:
//     up-shop: { server: https://127.0.0.1:7400, token: ..., ca: /home/me/shop/.flotilla/pki/ca.crt, cluster: CLUSTER_ID }
//
// The first format (a single `server` and `token` at the top) is read as one context named "default" and is
// rewritten in this format by the next write. `flotilla up` adds or updates its own context and makes it
// current; no write removes a context but `flotilla config delete-context`.
import { readFileSync, writeFileSync, mkdirSync, existsSync, chmodSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

export interface Context {
  server: string;
  token?: string;
  /** The file holding the cluster CA certificate (PEM) that the server is verified against. */
  ca?: string;
  /** The id of the cluster behind the server, when known (`flotilla up` writes it). */
  cluster?: string;
}

export interface CliConfig {
  currentContext?: string;
  contexts: Record<string, Context>;
}

/** Where the CLI talks to; `context` is set when the server came from a context of the config file. */
export interface ClientConfig {
  server: string;
  token?: string;
  /** The cluster CA certificate (PEM), and the file it was read from. */
  ca?: { pem: string; path: string };
  context?: { name: string; contextCount: number };
}

export const DEFAULT_SERVER = 'https://127.0.0.1:7400';
/** Where `flotilla up` run in this folder keeps the CA: the last place the CLI looks for one. */
export const DEFAULT_CA_FILE = join('.flotilla', 'pki', 'ca.crt');

/** The config file says something the CLI cannot use: the message names the file and what is wrong. */
export class ConfigError extends Error {}

/** ~/.flotilla/config, or FLOTILLA_CONFIG when set. */
export function configPath(env: NodeJS.ProcessEnv): string {
  return env.FLOTILLA_CONFIG ?? join(env.HOME ?? homedir(), '.flotilla', 'config');
}

/**
 * Where the CLI finds its server, token and CA: --server/--token/--ca, then (unless --context names a context)
 * FLOTILLA_SERVER/FLOTILLA_TOKEN/FLOTILLA_CA, then the context --context names or else the current context, then
 * (the CA only) ./.flotilla/pki/ca.crt of a `flotilla up` in this folder. A context's token and CA go only to
 * that context's server: a server given by flag or environment gets those of the context with that very server,
 * if any, never the current context's.
 */
export function resolveClientConfig(flags: { server?: string | undefined; token?: string | undefined; ca?: string | undefined; context?: string | undefined }, env: NodeJS.ProcessEnv, cwd = process.cwd()): ClientConfig {
  const path = configPath(env);
  const config = readCliConfig(path);
  const envServer = flags.context === undefined ? env.FLOTILLA_SERVER : undefined;
  const envToken = flags.context === undefined ? env.FLOTILLA_TOKEN : undefined;
  const given = flags.server ?? envServer;
  const chosen = flags.context !== undefined || given === undefined ? chosenContext(path, config, flags.context) : undefined;
  const server = given ?? chosen?.context.server ?? DEFAULT_SERVER;
  const tokenOwner = chosen?.context.server === server ? chosen.context : Object.values(config.contexts).find((c) => c.server === server);
  const token = flags.token ?? envToken ?? tokenOwner?.token;
  const envCa = flags.context === undefined ? env.FLOTILLA_CA : undefined;
  const caPath = flags.ca ?? envCa ?? tokenOwner?.ca ?? (existsSync(join(cwd, DEFAULT_CA_FILE)) ? join(cwd, DEFAULT_CA_FILE) : undefined);
  const ca = caPath === undefined ? undefined : readCaFile(caPath, flags.ca !== undefined ? '--ca' : envCa !== undefined ? 'FLOTILLA_CA' : tokenOwner?.ca !== undefined ? `${path}: the context's ca` : DEFAULT_CA_FILE);
  return {
    server,
    ...(token ? { token } : {}),
    ...(ca ? { ca } : {}),
    ...(given === undefined && chosen ? { context: { name: chosen.name, contextCount: Object.keys(config.contexts).length } } : {}),
  };
}

function readCaFile(path: string, from: string): { pem: string; path: string } {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${from}: cannot read the cluster CA file ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`${from}: ${path} is not a PEM certificate (the server's <data>/pki/ca.crt)`);
  return { pem, path };
}

/** What the CLI says when it has no CA for an https server: every way to give one. */
export function missingCaMessage(server: string): string {
  return `no cluster CA to verify ${server} with: give --ca FILE (the server's <data>/pki/ca.crt, or GET /cacerts checked against your token's hash), `
    + 'set FLOTILLA_CA=FILE, or add "ca: FILE" to the context in the CLI config (flotilla up does that for its own cluster)';
}

/** The context --context names (it must exist), else the current one (it must exist); undefined when the file has none. */
function chosenContext(path: string, config: CliConfig, named: string | undefined): { name: string; context: Context } | undefined {
  const names = Object.keys(config.contexts).sort();
  const known = () => (names.length ? `contexts: ${names.join(', ')}` : 'it has none');
  if (named !== undefined) {
    const context = config.contexts[named];
    if (!context) throw new ConfigError(`--context: no context named "${named}" in ${path} (${known()})`);
    return { name: named, context };
  }
  if (config.currentContext === undefined) {
    if (names.length === 0) return undefined;
    throw new ConfigError(`${path} has no current context; choose one with "flotilla config use-context NAME" (${known()})`);
  }
  const context = config.contexts[config.currentContext];
  if (!context) throw new ConfigError(`${path}: current-context "${config.currentContext}" names no context; choose one with "flotilla config use-context NAME" (${known()})`);
  return { name: config.currentContext, context };
}

/** The config file; an absent or empty file is a config without contexts. */
export function readCliConfig(path: string): CliConfig {
  if (!existsSync(path)) return { contexts: {} };
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`${path}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (doc === null || doc === undefined) return { contexts: {} };
  if (!isMapping(doc)) throw new ConfigError(`${path}: expected a mapping with current-context and contexts`);
  if ('server' in doc || 'token' in doc) {
    // The first format: one server (DEFAULT_SERVER when left out) and its token.
    if ('contexts' in doc || 'current-context' in doc) throw new ConfigError(`${path}: server and token at the top belong to the old single-server format; move them into a context under contexts`);
    return { currentContext: 'default', contexts: { default: contextOf(path, '', { server: DEFAULT_SERVER, ...doc }) } };
  }
  const { 'current-context': current, contexts = {}, ...unknown } = doc;
  unknownFields(path, '', unknown, 'current-context, contexts');
  if (current !== undefined && typeof current !== 'string') throw new ConfigError(`${path}: current-context must be a string`);
  if (!isMapping(contexts)) throw new ConfigError(`${path}: contexts must be a mapping of context names to {server, token}`);
  const out: CliConfig = { contexts: {} };
  for (const [name, c] of Object.entries(contexts)) out.contexts[name] = contextOf(path, `contexts.${name}`, c);
  if (current) out.currentContext = current;
  return out;
}

function contextOf(path: string, where: string, value: unknown): Context {
  if (!isMapping(value)) throw new ConfigError(`${path}: ${where} must be a mapping with server and token`);
  const { server, token, ca, cluster, ...unknown } = value;
  const prefix = where ? `${where}.` : '';
  unknownFields(path, prefix, unknown, 'server, token, ca, cluster');
  if (typeof server !== 'string' || server === '') throw new ConfigError(`${path}: ${prefix}server must be a URL`);
  if (token !== undefined && typeof token !== 'string') throw new ConfigError(`${path}: ${prefix}token must be a string`);
  if (cluster !== undefined && typeof cluster !== 'string') throw new ConfigError(`${path}: ${prefix}cluster must be a string`);
  if (ca !== undefined && typeof ca !== 'string') throw new ConfigError(`${path}: ${prefix}ca must be the path of a CA certificate file`);
  return { server, ...(token ? { token } : {}), ...(ca ? { ca } : {}), ...(cluster ? { cluster } : {}) };
}

function unknownFields(path: string, prefix: string, rest: Record<string, unknown>, expected: string): void {
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new ConfigError(`${path}: unknown field ${extra.map((k) => `"${prefix}${k}"`).join(', ')} (expected ${expected})`);
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Writes the CLI config (mode 0600: it holds tokens); returns its path. */
export function writeCliConfig(env: NodeJS.ProcessEnv, config: CliConfig): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const doc = { ...(config.currentContext ? { 'current-context': config.currentContext } : {}), contexts: config.contexts };
  writeFileSync(path, toYaml(doc), { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/**
 * The context `flotilla up` keeps for the cluster in dataDir: "up-" and the name of the folder `up` ran in (the
 * --data folder's own name when it is not .flotilla), with the first 8 characters of the cluster id appended
 * when that name already belongs to another cluster. The same cluster always gets the same name back.
 */
function upContextName(dataDir: string, clusterId: string, existing: Record<string, Context>): string {
  const folder = basename(dataDir) === '.flotilla' ? basename(dirname(dataDir)) : basename(dataDir);
  const name = `up-${folder.replace(/[^A-Za-z0-9._-]+/g, '-') || 'root'}`;
  const taken = existing[name];
  return !taken || taken.cluster === clusterId ? name : `${name}-${clusterId.slice(0, 8)}`;
}

/**
 * What `flotilla up` does to the config, as `kind create cluster` does to kubeconfig: adds or updates the
 * cluster's context (named by upContextName) and makes it current, keeping every other context. `switched` is
 * true when the current context changed.
 */
export function saveUpContext(env: NodeJS.ProcessEnv, dataDir: string, context: Context & { cluster: string }): { path: string; name: string; switched: boolean } {
  const config = readCliConfig(configPath(env));
  const name = upContextName(dataDir, context.cluster, config.contexts);
  const path = writeCliConfig(env, { currentContext: name, contexts: { ...config.contexts, [name]: context } });
  return { path, name, switched: config.currentContext !== name };
}

/** The data dir of a server on this machine (`flotilla up`/`server` --data, default ./.flotilla): --data DIR of a command, resolved. */
export function localDataDir(dataFlag: string | undefined): string {
  return resolve(dataFlag ?? '.flotilla');
}

/**
 * Writes a file that holds a credential: mode 0600, atomically (a temporary file beside it, then a rename), so a
 * reader sees the old content or the new, never a part, and no other user ever can read it.
 */
export function writePrivateFile(path: string, text: string): void {
  const partial = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  try {
    writeFileSync(partial, text, { mode: 0o600, flag: 'wx' });
    chmodSync(partial, 0o600);
    renameSync(partial, path);
  } finally {
    rmSync(partial, { force: true });
  }
}
