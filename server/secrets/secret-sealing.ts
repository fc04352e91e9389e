// Secrets at rest: a Secret's values (data, stringData, and the last-applied-configuration annotation, which holds
// them again) are sealed into one AES-256-GCM value before the write is proposed (SealingProposer), so the Raft
// log, the state database, its snapshots and backups only ever hold ciphertext; everything that reads the state
// (the API, watches, controllers, token checks) reads it through SealedState, which opens them again.
//
// A sealed Secret keeps its metadata (the state machine needs names, uids, finalizers and owners) and holds
// `sealed: "k8s:enc:aesgcm:v1:<key name>:<base64 of nonce, ciphertext, tag>"`, the prefix Kubernetes' aesgcm
// provider writes. The additional data is the Secret's storage path (/registry/secrets/<ns>/<name>, as
// Kubernetes authenticates the etcd key), so a value moved onto another Secret does not open.
//
// The nonce is synthetic (an HMAC of the path and the plaintext under a key derived from the AES key), not random:
// writing the same values again with the same key yields the same stored object, so an unchanged apply stays
// unchanged (no new resourceVersion, no watch event) as the state machine promises. Two different plaintexts meet
// the same nonce only if 96 bits of HMAC collide; equal plaintexts under one key giving equal ciphertexts is the
// only thing it reveals, as with AES-GCM-SIV.
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import { ANNOTATION_LAST_APPLIED } from '../../api-types/index.js';
import type { Proposer } from '../store/proposer.js';
import { StoreError } from '../store/types.js';
import type { ApplyResult, Command, StateStore, StoredObject, WatchEvent } from '../store/types.js';
import type { EncryptionKey } from './encryption-config.js';

/** The store key of Secrets: the one resource sealed. */
export const SEALED_RESOURCE = 'secrets';

const PREFIX = 'k8s:enc:aesgcm:v1:';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What is sealed of a Secret. */
interface SealedValues { data?: unknown; stringData?: unknown; lastApplied?: string }

interface Key { name: string; aes: Buffer; nonce: Buffer }

/** A stored Secret as sealed: its values in `sealed`. */
type SealedSecret = StoredObject & { sealed?: string; data?: unknown; stringData?: unknown };

/**
 * Seals and opens Secrets with a set of keys, the first one primary. The keys can be replaced while the server
 * runs (rotation): `use` takes effect for the next seal and open.
 */
export class SecretSealer {
  #keys: Key[] = [];
  #names: string[] = [];

  constructor(keys: EncryptionKey[]) {
    this.use(keys);
  }

  use(keys: EncryptionKey[]): void {
    if (keys.length === 0) throw new Error('Secrets need at least one encryption key');
    this.#keys = keys.map((k) => {
      const aes = Buffer.from(k.secret, 'base64');
      return { name: k.name, aes, nonce: createHmac('sha256', aes).update('flotilla secret nonce key').digest() };
    });
    this.#names = keys.map((k) => k.name);
  }

  /** The key names, primary first. */
  get keyNames(): readonly string[] {
    return this.#names;
  }

  /** `secret` as stored: its values sealed with the primary key. */
  seal(secret: StoredObject): StoredObject {
    const { data, stringData, sealed: _stale, ...rest } = secret as SealedSecret;
    const annotations = { ...(secret.metadata.annotations ?? {}) };
    const lastApplied = annotations[ANNOTATION_LAST_APPLIED];
    delete annotations[ANNOTATION_LAST_APPLIED];
    const values: SealedValues = { ...(data !== undefined ? { data } : {}), ...(stringData !== undefined ? { stringData } : {}), ...(lastApplied !== undefined ? { lastApplied } : {}) };
    const metadata = { ...secret.metadata };
    if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
    else delete metadata.annotations;
    const key = this.#keys[0]!;
    const aad = Buffer.from(storagePath(secret));
    const plaintext = Buffer.from(JSON.stringify(values));
    const nonce = createHmac('sha256', key.nonce).update(aad).update('\0').update(plaintext).digest().subarray(0, NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.aes, nonce);
    cipher.setAAD(aad);
    const body = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return { ...rest, metadata, sealed: `${PREFIX}${key.name}:${body.toString('base64')}` } as StoredObject;
  }

  /** `stored` as written: a sealed Secret opened; one stored before encryption (identity) as it is. */
  open(stored: StoredObject): StoredObject {
    const { sealed, ...rest } = stored as SealedSecret;
    if (sealed === undefined) return stored;
    const { name, body } = parseSealed(sealed, stored);
    const key = this.#keys.find((k) => k.name === name);
    if (!key) throw unreadable(stored, `it is encrypted with key "${name}", which ${this.#names.length} key(s) of this server's encryption-config.json (${this.#names.join(', ')}) do not include`);
    let values: SealedValues;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.aes, body.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(storagePath(stored)));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      values = JSON.parse(Buffer.concat([decipher.update(body.subarray(NONCE_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8')) as SealedValues;
    } catch {
      throw unreadable(stored, `key "${name}" does not authenticate it (a damaged value, or one moved from another Secret)`);
    }
    const opened: Record<string, unknown> = { ...rest };
    if (values.data !== undefined) opened.data = values.data;
    if (values.stringData !== undefined) opened.stringData = values.stringData;
    if (values.lastApplied !== undefined) opened.metadata = { ...stored.metadata, annotations: { ...(stored.metadata.annotations ?? {}), [ANNOTATION_LAST_APPLIED]: values.lastApplied } };
    return opened as unknown as StoredObject;
  }

}

/** The name of the key stored Secret `stored` is sealed with; undefined for one stored in plain (identity). */
export function sealedWith(stored: StoredObject): string | undefined {
  const { sealed } = stored as SealedSecret;
  return sealed === undefined ? undefined : parseSealed(sealed, stored).name;
}

function storagePath(o: StoredObject): string {
  return `/registry/secrets/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function parseSealed(sealed: string, o: StoredObject): { name: string; body: Buffer } {
  const m = /^k8s:enc:aesgcm:v1:([^:]+):([A-Za-z0-9+/=]+)$/.exec(sealed);
  const body = m ? Buffer.from(m[2]!, 'base64') : Buffer.alloc(0);
  if (!m || body.length < NONCE_BYTES + TAG_BYTES) throw unreadable(o, `its stored value does not start with ${PREFIX}<key>: or is too short`);
  return { name: m[1]!, body };
}

function unreadable(o: StoredObject, why: string): StoreError {
  return new StoreError({ code: 500, reason: 'InternalError', message: `Secret ${o.metadata.namespace ?? ''}/${o.metadata.name} cannot be decrypted: ${why}` });
}

/**
 * The state as its readers see it: `store` with every Secret opened (get, list, watch). Writes (apply) pass
 * through unchanged: they are commands already sealed before they were proposed.
 */
export class SealedState implements StateStore {
  constructor(readonly store: StateStore, readonly sealer: SecretSealer) {}

  revision(): number {
    return this.store.revision();
  }

  get(resource: string, namespace: string, name: string): StoredObject | undefined {
    const o = this.store.get(resource, namespace, name);
    return o && resource === SEALED_RESOURCE ? this.sealer.open(o) : o;
  }

  list(resource: string, namespace?: string): { items: StoredObject[]; revision: number } {
    const listed = this.store.list(resource, namespace);
    return resource === SEALED_RESOURCE ? { items: listed.items.map((o) => this.sealer.open(o)), revision: listed.revision } : listed;
  }

  apply(batch: Parameters<StateStore['apply']>[0]): ApplyResult[] {
    return this.store.apply(batch);
  }

  watch(resource: string, namespace: string | undefined, fromRevision: number, listener: (event: WatchEvent) => void, onClose?: () => void): () => void {
    const opened = resource === SEALED_RESOURCE ? (e: WatchEvent) => listener({ ...e, object: this.sealer.open(e.object) }) : listener;
    return this.store.watch(resource, namespace, fromRevision, opened, onClose);
  }

  get watcherCount(): number {
    return this.store.watcherCount;
  }
}

/** Seals every Secret a command writes before `proposer` sees it, and opens the Secret its result holds. */
export class SealingProposer implements Proposer {
  constructor(readonly proposer: Proposer, readonly sealer: SecretSealer) {}

  async propose(command: Command): Promise<ApplyResult> {
    if (command.resource !== SEALED_RESOURCE) return this.proposer.propose(command);
    const sealed: Command = command.op === 'delete' ? command : { ...command, object: this.sealer.seal(command.object) };
    const result = await this.proposer.propose(sealed);
    return result.ok ? { ...result, object: this.sealer.open(result.object) } : result;
  }
}
