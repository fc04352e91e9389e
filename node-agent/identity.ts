// The agent's identity: an Ed25519 key pair kept in its data dir, made at first start.
//
// The key's fingerprint goes out as the Node annotation flotilla.io/node-key when the agent registers; the
// servers refuse a later update of that Node from a machine with another key (server/tokens/node-identity.ts).
// Re-imaging a machine therefore makes it a new node, replaced on purpose with `flotilla node replace NAME`.
// The private key never leaves the file (mode 0600); nothing else in the data dir depends on it.
import { ANNOTATION_NODE_KEY } from '../api-types/index.js';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const NODE_KEY_FILE = 'node-key.pem';

export interface NodeIdentity {
  /** "ed25519:<base64url SHA-256 of the SubjectPublicKeyInfo>": the value of the flotilla.io/node-key annotation. */
  fingerprint: string;
  publicKeyPem: string;
  /** Ed25519 signature of `data`, base64url. */
  sign(data: Uint8Array | string): string;
}

/**
 * Reads `<dataDir>/node-key.pem`, making a new key (mode 0600) when there is none. Throws with the path when
 * the file exists but is not an Ed25519 private key, or is readable by others (fix: chmod 600 or remove it).
 */
export function loadNodeIdentity(dataDir: string): NodeIdentity {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, NODE_KEY_FILE);
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    chmodSync(path, 0o600);
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path}: the node key must be readable by its owner only (chmod 600 ${path})`);
  let privateKey;
  try {
    privateKey = createPrivateKey(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not a PEM private key (${err instanceof Error ? err.message : String(err)}); remove it to have a new one made, which makes this machine a new node`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path}: expected an Ed25519 key, found ${privateKey.asymmetricKeyType ?? 'an unknown type'}`);
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return {
    fingerprint: `ed25519:${createHash('sha256').update(spki).digest('base64url')}`,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    sign: (data) => sign(null, typeof data === 'string' ? Buffer.from(data) : data, privateKey).toString('base64url'),
  };
}

interface AnnotatedObject { metadata: { name: string; annotations?: Record<string, string> } }

/** The Node object to register, with this machine's key annotation added. */
export function withNodeKey<T extends AnnotatedObject>(node: T, identity: NodeIdentity): T {
  return { ...node, metadata: { ...node.metadata, annotations: { ...(node.metadata.annotations ?? {}), [ANNOTATION_NODE_KEY]: identity.fingerprint } } };
}

/**
 * Checks the Node the server holds after registration (a create that met an existing Node answers that one):
 * throws when it belongs to another machine, telling the user what to run. A Node without a key is accepted.
 */
export function checkRegisteredNode(node: AnnotatedObject, identity: NodeIdentity): void {
  const key = node.metadata.annotations?.[ANNOTATION_NODE_KEY];
  if (key === undefined || key === identity.fingerprint) return;
  throw new Error(`node "${node.metadata.name}" is already registered by another machine (node key ${key}, this machine ${identity.fingerprint}). If this machine was re-imaged, run "flotilla node replace ${node.metadata.name}" with the admin token, then start this agent again`);
}
