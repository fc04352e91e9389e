// Where a server's encryption keys come from (kept, received from the cluster at join, or made for a new cluster)
// and `flotilla secrets-encrypt status|rotate|prune` (as k3s' commands of that name): the routes that report,
// rotate and prune the keys, and the peer route every member takes a key change through.
import { Hono } from 'hono';
import type { Context } from 'hono';
import { isServer, type Identity } from '../api/middleware/auth.js';
import { resourceOfKind } from '../../api-types/index.js';
import { pinnedFetch } from '../../client/client.js';
import { StoreError } from '../store/types.js';
import type { StateStore } from '../store/types.js';
import type { ObjectService } from '../objects/service.js';
import { loadEncryptionKeys, newEncryptionKey, parseEncryptionConfiguration, saveEncryptionKeys, encryptionConfiguration } from './encryption-config.js';
import type { EncryptionKey } from './encryption-config.js';
import { SEALED_RESOURCE, sealedWith, type SecretSealer } from './secret-sealing.js';

/** Served with the join routes (cluster secret) to a joiner, and taken by every member from a peer (PUT). */
export const ENCRYPTION_CONFIG_PATH = '/cluster/v1/encryption-config';

/**
 * This server's keys (<data>/encryption-config.json): kept from before; or, joining, received from the member at
 * `join` over TLS verified against the cluster CA `caPem`, with the cluster secret, and saved; or made now (a new
 * cluster, or one restored without its keys: Secrets stored in plain are still read).
 */
export async function encryptionKeysFor(dataDir: string, plan: { join?: string; secret?: string }, caPem: string, signal: AbortSignal): Promise<EncryptionKey[]> {
  const kept = loadEncryptionKeys(dataDir);
  if (kept) return kept;
  let keys: EncryptionKey[];
  if (plan.join) {
    const fetch = pinnedFetch({ ca: caPem });
    try {
      const res = await fetch(new URL(ENCRYPTION_CONFIG_PATH, plan.join), { headers: { authorization: `Bearer ${plan.secret ?? ''}` }, signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]) });
      const text = await res.text();
      if (!res.ok) throw new Error(`receiving the Secrets' encryption keys from ${plan.join} failed with ${res.status}: ${text.slice(0, 300)}`);
      keys = parseEncryptionConfiguration(JSON.parse(text), `the encryption configuration ${plan.join} answered`);
    } finally {
      fetch.close();
    }
  } else {
    keys = [newEncryptionKey()];
  }
  saveEncryptionKeys(dataDir, keys);
  return keys;
}

/** What `flotilla secrets-encrypt status` shows: the keys, primary first, and how many Secrets each one holds. */
export interface EncryptionStatus {
  encryptionStatus: 'Enabled';
  provider: 'aesgcm';
  keys: { name: string; primary: boolean; secrets: number }[];
  /** Secrets stored before encryption was on (identity), until a rotation rewrites them. */
  unencryptedSecrets: number;
}

export interface SecretsEncryptOptions {
  dataDir: string;
  sealer: SecretSealer;
  /** The state as stored (Secrets sealed), to count keys in use. */
  store: StateStore;
  objects: ObjectService;
  readBarrier: () => Promise<void>;
  /** Who made the request, as the API's auth middleware established it (the policy middleware has allowed it). */
  identityOf: (c: Context) => Identity | undefined;
  /** The peer URLs of the other members. */
  peers: () => string[];
  /** Fetch as this member (its server certificate), over TLS verified against the cluster CA. */
  peerFetch: typeof globalThis.fetch;
}

const secrets = resourceOfKind('Secret');

/**
 * GET  /cluster/v1/secrets-encrypt/status (admin)
 * POST /cluster/v1/secrets-encrypt/rotate (admin): a new primary key, then every Secret written again with it.
 * POST /cluster/v1/secrets-encrypt/prune  (admin): drops the keys no Secret is encrypted with any more.
 * PUT  ENCRYPTION_CONFIG_PATH (peer): takes a member's key change.
 *
 * A key reaches every member before any Secret is encrypted with it (rotate hands out the new key as a secondary
 * one first, then makes it primary everywhere), and leaves a member only once no Secret uses it: a member
 * unreachable during a step fails the step, and no member is then left unable to read what the others wrote.
 * One change at a time on a member; run them from one place.
 */
export function secretsEncryptRoutes(o: SecretsEncryptOptions): Hono {
  const app = new Hono();
  let busy: Promise<unknown> = Promise.resolve();
  const serialised = <T>(work: () => Promise<T>): Promise<T> => {
    const next = busy.then(work);
    busy = next.catch(() => undefined);
    return next;
  };
  const use = (keys: EncryptionKey[]) => {
    saveEncryptionKeys(o.dataDir, keys);
    o.sealer.use(keys);
  };
  const everywhere = async (keys: EncryptionKey[]) => {
    for (const url of o.peers()) {
      let res: Response;
      try {
        res = await o.peerFetch(new URL(ENCRYPTION_CONFIG_PATH, url), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(encryptionConfiguration(keys)), signal: AbortSignal.timeout(15_000) });
      } catch (err) {
        throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `member ${url} did not take the key change (${err instanceof Error ? err.message : String(err)}); run the command again once every member is up` });
      }
      if (!res.ok) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `member ${url} refused the key change with ${res.status}: ${(await res.text()).slice(0, 300)}` });
      await res.body?.cancel();
    }
    use(keys);
  };
  const status = async (): Promise<EncryptionStatus> => {
    await o.readBarrier();
    const counts = new Map<string, number>();
    let plain = 0;
    for (const s of o.store.list(SEALED_RESOURCE).items) {
      const key = sealedWith(s);
      if (key === undefined) plain++;
      else counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return {
      encryptionStatus: 'Enabled', provider: 'aesgcm',
      keys: o.sealer.keyNames.map((name, i) => ({ name, primary: i === 0, secrets: counts.get(name) ?? 0 })),
      unencryptedSecrets: plain,
    };
  };
  const currentKeys = (): EncryptionKey[] => loadEncryptionKeys(o.dataDir) ?? [];
  app.get('/cluster/v1/secrets-encrypt/status', async (c) => {
    return c.json(await status());
  });
  app.post('/cluster/v1/secrets-encrypt/rotate', async (c) => {
    return c.json(await serialised(async () => {
      const keys = currentKeys();
      const added = newEncryptionKey();
      await everywhere([keys[0]!, added, ...keys.slice(1)]);
      await everywhere([added, ...keys]);
      await reencrypt(o, added.name);
      return status();
    }));
  });
  app.post('/cluster/v1/secrets-encrypt/prune', async (c) => {
    return c.json(await serialised(async () => {
      await o.readBarrier();
      const used = new Set(o.store.list(SEALED_RESOURCE).items.map((s) => sealedWith(s)));
      const [primary, ...rest] = currentKeys();
      await everywhere([primary!, ...rest.filter((k) => used.has(k.name))]);
      return status();
    }));
  });
  app.put(ENCRYPTION_CONFIG_PATH, async (c) => {
    if (!isServer(o.identityOf(c))) throw new StoreError({ code: 403, reason: 'Forbidden', message: 'only members hand each other key changes' });
    const body: unknown = await c.req.json().catch(() => undefined);
    let keys: EncryptionKey[];
    try {
      keys = parseEncryptionConfiguration(body, 'the encryption configuration sent');
    } catch (err) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: (err as Error).message });
    }
    await serialised(async () => use(keys));
    return c.body(null, 204);
  });
  return app;
}

/** How often one Secret's rewrite is retried when another write got in between. */
const REWRITE_ATTEMPTS = 5;

/** Writes every Secret not yet encrypted with key `primary` again (as k3s' reencrypt stage does). */
async function reencrypt(o: SecretsEncryptOptions, primary: string): Promise<void> {
  await o.readBarrier();
  for (const stored of o.store.list(SEALED_RESOURCE).items) {
    const { namespace, name } = stored.metadata;
    for (let attempt = 1; ; attempt++) {
      const raw = o.store.get(SEALED_RESOURCE, namespace ?? '', name);
      if (!raw || sealedWith(raw) === primary) break;
      const current = o.objects.get(secrets, namespace, name)!;
      try {
        await o.objects.replace(secrets, namespace, name, current);
        break;
      } catch (err) {
        if (!(err instanceof StoreError && (err.failure.code === 409 || err.failure.code === 404)) || attempt >= REWRITE_ATTEMPTS) throw err;
      }
    }
  }
}
