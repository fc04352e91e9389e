// The agent's identity: one ECDSA P-256 key per machine, kept in <data>/pki/node.key (mode 0600), made at first
// start. It is the key of the node certificate (node-agent/node-certificate.ts): the servers bind the node name
// to it when they sign the first certificate and refuse a CSR for that name with another key
// (server/tokens/node-certificates.ts). Its fingerprint also goes out as the Node annotation flotilla.io/node-key
// when the agent registers (server/tokens/node-identity.ts guards it). Re-imaging a machine therefore makes it a
// new node, replaced on purpose with `flotilla node replace NAME`. The private key never leaves the file.
import { ANNOTATION_NODE_KEY } from '../api-types/index.js';
import { createHash, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importKeyPair, newKeyPair, privateKeyPem, type KeyPair } from '../client/pki.js';

export const NODE_PKI_DIR = 'pki';
export const NODE_KEY_FILE = 'node.key';

export interface NodeIdentity {
  keys: KeyPair;
  /** PKCS#8 PEM of the private key: what TLS takes. */
  keyPem: string;
  /** Hex SHA-256 of the SubjectPublicKeyInfo (client/pki.ts certificateInfo's publicKeySha256 of its certificates). */
  publicKeySha256: string;
  /** "sha256:<publicKeySha256>": the value of the flotilla.io/node-key annotation. */
  fingerprint: string;
}

/**
 * Reads `<dataDir>/pki/node.key`, making a new key (mode 0600) when there is none. Throws with the path when the
 * file exists but is not a P-256 private key, or is readable by others (fix: chmod 600 or remove it).
 */
export async function loadNodeIdentity(dataDir: string): Promise<NodeIdentity> {
  const dir = join(dataDir, NODE_PKI_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, NODE_KEY_FILE);
  if (!existsSync(path)) {
    writeFileSync(path, await privateKeyPem((await newKeyPair()).privateKey), { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path}: the node key must be readable by its owner only (chmod 600 ${path})`);
  const keyPem = readFileSync(path, 'utf8');
  let keys: KeyPair;
  try {
    keys = await importKeyPair(keyPem);
  } catch (err) {
    throw new Error(`${path}: not a PEM ECDSA P-256 private key (${err instanceof Error ? err.message : String(err)}); remove it to have a new one made, which makes this machine a new node`);
  }
  const spki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const publicKeySha256 = createHash('sha256').update(spki).digest('hex');
  return { keys, keyPem, publicKeySha256, fingerprint: `sha256:${publicKeySha256}` };
}

interface AnnotatedObject { metadata: { name: string; annotations?: Record<string, string> } }

/** The Node object to register, with this machine's key annotation added. */
export function withNodeKey<T extends AnnotatedObject>(node: T, identity: Pick<NodeIdentity, 'fingerprint'>): T {
  return { ...node, metadata: { ...node.metadata, annotations: { ...(node.metadata.annotations ?? {}), [ANNOTATION_NODE_KEY]: identity.fingerprint } } };
}

/**
 * Checks the Node the server holds after registration (a create that met an existing Node answers that one):
 * throws when it belongs to another machine, telling the user what to run. A Node without a key is accepted.
 */
export function checkRegisteredNode(node: AnnotatedObject, identity: Pick<NodeIdentity, 'fingerprint'>): void {
  const key = node.metadata.annotations?.[ANNOTATION_NODE_KEY];
  if (key === undefined || key === identity.fingerprint) return;
  throw new Error(`node "${node.metadata.name}" is already registered by another machine (node key ${key}, this machine ${identity.fingerprint}). If this machine was re-imaged, run "flotilla node replace ${node.metadata.name}" with the admin token, then start this agent again`);
}
