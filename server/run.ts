import { mkdirSync, existsSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from './api/app.js';
import { staticTokens } from './api/auth.js';
import { SqliteStore } from './store/sqlite-store.js';
import { LocalProposer } from './store/proposer.js';
import type { Proposer } from './store/proposer.js';
import { ObjectService } from './objects.js';

export const FLOTILLA_VERSION = '0.1.0';

export interface ServerConfig {
  /** Holds state.db and admin-token; created when missing. */
  dataDir: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  maxBodyBytes?: number;
}

export interface ServerInfo {
  url: string;
  adminToken: string;
  adminTokenPath: string;
}

/** Namespaces that exist in every cluster, as in Kubernetes. */
const BOOTSTRAP_NAMESPACES = ['default', 'kube-system', 'kube-node-lease'];

/**
 * Runs one API server until `signal` aborts; resolves after it has closed, rejects on a start-up error.
 * `onReady` is called once it listens.
 */
export async function run(signal: AbortSignal, config: ServerConfig, onReady?: (info: ServerInfo) => void): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const { token: adminToken, path: adminTokenPath } = ensureAdminToken(config.dataDir);
  const store = new SqliteStore({ path: join(config.dataDir, 'state.db') });
  const proposer = new LocalProposer(store);
  try {
    await bootstrap(store, proposer);
    const app = createApp({
      objects: new ObjectService(store, proposer),
      readBarrier: async () => {},
      authenticate: staticTokens({ [adminToken]: { name: 'admin', role: 'admin' } }),
      version: { flotilla: FLOTILLA_VERSION, gitVersion: `v${FLOTILLA_VERSION}` },
      ready: () => true,
      ...(config.maxBodyBytes ? { maxBodyBytes: config.maxBodyBytes } : {}),
    });
    const server = serve({ fetch: app.fetch, hostname: config.host, port: config.port });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    onReady?.({ url: `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`, adminToken, adminTokenPath });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Open watch streams would hold close() forever.
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    });
  } finally {
    store.close();
  }
}

/** Reads `<data>/admin-token`, creating it (mode 0600) at first start. */
export function ensureAdminToken(dataDir: string): { token: string; path: string } {
  const path = join(dataDir, 'admin-token');
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, path };
    throw new Error(`${path} holds no usable token (at least 16 characters); remove it to have a new one made`);
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { token, path };
}

async function bootstrap(store: SqliteStore, proposer: Proposer): Promise<void> {
  for (const name of BOOTSTRAP_NAMESPACES) {
    if (store.get('namespaces', '', name)) continue;
    const r = await proposer.propose({
      op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(),
      object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } },
    });
    if (!r.ok && r.failure.code !== 409) throw new Error(`creating namespace ${name}: ${r.failure.message}`);
  }
}
