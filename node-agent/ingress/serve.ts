// The agent's Ingress service: keeps the router's table true to the cluster. Ingresses and IngressClasses are
// listed and watched here; Services and EndpointSlices come from the agent's one ServiceView; the TLS Secrets
// named in tls[] of the served Ingresses are read one by one (the Node authorizer lets an agent get exactly
// those) when the set of names changes and every SECRET_REFRESH_MS, so a renewed certificate is served within
// that time. Every change gives a new table, swapped whole into the router. While it serves, the node carries
// annotation flotilla.io/ingress-ports, from which the Ingress controller fills status.loadBalancer.
import tls from 'node:tls';
import type { Logger } from 'pino';
import { ANNOTATION_INGRESS_PORTS, INGRESS_CONTROLLER, type Ingress, type IngressClass } from '../../api-types/index.js';
import { ChangeSignal, delay } from '../agent.js';
import type { NodeApi, ObjectEvent } from '../api-client.js';
import { listAndWatch, type ServiceView } from '../network/service-cache.js';
import { IngressRouter, type RouterListen } from './router.js';
import { RouteTable, servedIngresses, type TlsKeyPair } from './routes.js';

/** How often the TLS Secrets of the served Ingresses are read again. */
export const SECRET_REFRESH_MS = 30_000;
/** How long a stopping router waits for the servers to take the removal of its node annotation. */
const UNANNOUNCE_WAIT_MS = 2_000;
/** Secret type and keys of a TLS key pair, as Kubernetes defines them. */
const SECRET_TYPE_TLS = 'kubernetes.io/tls';

export interface IngressServiceOptions {
  api: NodeApi;
  /** Services and EndpointSlices; `synced` resolves when both were listed once. */
  services: ServiceView & { synced: Promise<void> };
  nodeName: string;
  listen: RouterListen;
  log: Logger;
  retrySeconds?: number;
  retryMaxSeconds?: number;
  /** Called once the listeners are open, with their ports. */
  onListening?: (ports: { httpPort?: number; httpsPort?: number }) => void;
}

/** Serves Ingresses until the signal aborts; rejects only when a listener cannot open (a port in use). */
export async function runIngressService(signal: AbortSignal, o: IngressServiceOptions): Promise<void> {
  const { log } = o;
  const router = new IngressRouter(log);
  const ports = await router.listen(o.listen);
  log.info(ports, 'ingress router listening');
  o.onListening?.(ports);
  const ingresses = new Map<string, Ingress>();
  const classes = new Map<string, IngressClass>();
  const keyPairs = new Map<string, TlsKeyPair>();
  /** Secrets that were not a valid key pair, by "namespace/name" and resourceVersion: logged once each. */
  const refused = new Map<string, string>();
  const changes = new ChangeSignal(signal);
  const changed = changes.mark;
  let secretsDue = true;
  const offServices = o.services.onChange(changed);
  const retry = { log, ...(o.retrySeconds !== undefined ? { retrySeconds: o.retrySeconds } : {}), ...(o.retryMaxSeconds !== undefined ? { retryMaxSeconds: o.retryMaxSeconds } : {}) };
  let listed = 0;
  let resolveListed!: () => void;
  const bothListed = new Promise<void>((resolve) => { resolveListed = resolve; });
  const listedOnce = (): void => { if (++listed === 2) resolveListed(); };
  const watching = Promise.all([
    listAndWatch<Ingress>('Ingress', () => o.api.listIngresses(), (rv, on, s) => o.api.watchIngresses(rv, on, s),
      (items) => replaceAll(ingresses, items), (e) => applyEvent(ingresses, e), listedOnce, changed, retry, signal),
    listAndWatch<IngressClass>('IngressClass', () => o.api.listIngressClasses(), (rv, on, s) => o.api.watchIngressClasses(rv, on, s),
      (items) => replaceAll(classes, items), (e) => applyEvent(classes, e), listedOnce, changed, retry, signal),
  ]);
  const refresh = setInterval(() => { secretsDue = true; changed(); }, SECRET_REFRESH_MS);
  const announced = announce(signal, o.api, o.nodeName, ports, log, o.retrySeconds ?? 1);
  let secretNames = '';
  try {
    // No table before everything was listed once: a partial one would answer 404 for routes that exist.
    await Promise.race([Promise.all([bothListed, o.services.synced]), delay(2 ** 31 - 1, signal)]);
    while (await changes.changed()) {
      const served = servedIngresses([...ingresses.values()], [...classes.values()], INGRESS_CONTROLLER);
      const wanted = [...new Set(served.flatMap((i) => (i.spec.tls ?? []).filter((t) => t.secretName).map((t) => `${i.metadata.namespace ?? 'default'}/${t.secretName}`)))].sort();
      if (secretsDue || wanted.join('\n') !== secretNames) {
        secretsDue = false;
        secretNames = wanted.join('\n');
        await readKeyPairs(o.api, wanted, keyPairs, refused, log);
      }
      router.setTable(RouteTable.build({
        ingresses: served, classes: [...classes.values()], services: o.services.services(),
        slicesOf: (ns, name) => o.services.slicesOf(ns, name), controller: INGRESS_CONTROLLER,
      }, keyPairs));
    }
  } finally {
    clearInterval(refresh);
    offServices();
    await watching;
    await announced;
    await router.close();
  }
}

/** Reads the Secrets `wanted` ("namespace/name") into `keyPairs`, dropping the others; a Secret that cannot be read keeps its last pair. */
async function readKeyPairs(api: NodeApi, wanted: readonly string[], keyPairs: Map<string, TlsKeyPair>, refused: Map<string, string>, log: Logger): Promise<void> {
  for (const key of keyPairs.keys()) if (!wanted.includes(key)) keyPairs.delete(key);
  await Promise.all(wanted.map(async (key) => {
    const slash = key.indexOf('/');
    const secret = await api.getSecret(key.slice(0, slash), key.slice(slash + 1)).catch((err: unknown) => {
      log.warn({ secret: key, err: (err as Error).message }, 'ingress: reading a TLS Secret failed; serving its last certificate');
      return null;
    });
    if (secret === null) return;
    const cert = secret?.type === SECRET_TYPE_TLS ? decode(secret.data?.['tls.crt']) : undefined;
    const pem = secret?.type === SECRET_TYPE_TLS ? decode(secret.data?.['tls.key']) : undefined;
    const pair = cert && pem ? { cert, key: pem } : undefined;
    if (pair && validKeyPair(pair)) {
      const known = keyPairs.get(key);
      if (!known || known.cert !== pair.cert || known.key !== pair.key) keyPairs.set(key, pair);
      return;
    }
    // The hosts of a missing or bad Secret get the fallback certificate; the Ingress controller posts the Event.
    keyPairs.delete(key);
    const version = secret?.metadata.resourceVersion ?? 'missing';
    if (refused.get(key) !== version) log.warn({ secret: key }, 'ingress: the TLS Secret is missing or not a valid kubernetes.io/tls key pair');
    refused.set(key, version);
  }));
}

function validKeyPair(pair: TlsKeyPair): boolean {
  try {
    tls.createSecureContext({ cert: pair.cert, key: pair.key });
    return true;
  } catch {
    return false;
  }
}

function decode(b64: string | undefined): string | undefined {
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

/**
 * Keeps annotation flotilla.io/ingress-ports on this node while the router serves ("http=80,https=443"), set
 * until a server takes it, and removed (best effort) when the signal aborts.
 */
async function announce(signal: AbortSignal, api: NodeApi, nodeName: string, ports: { httpPort?: number; httpsPort?: number }, log: Logger, retrySeconds: number): Promise<void> {
  const value = [ports.httpPort !== undefined ? `http=${ports.httpPort}` : '', ports.httpsPort !== undefined ? `https=${ports.httpsPort}` : ''].filter(Boolean).join(',');
  for (let failures = 0; !signal.aborted; failures++) {
    try {
      await api.patchNodeAnnotations(nodeName, { [ANNOTATION_INGRESS_PORTS]: value });
      break;
    } catch (err) {
      // The Node may not be registered yet: the agent loop registers it.
      if (failures > 0) log.debug({ err: (err as Error).message }, 'ingress: announcing the router on the node failed; retrying');
      await delay(Math.min(30_000, retrySeconds * 1000 * 2 ** Math.min(failures, 5)), signal);
    }
  }
  await delay(2 ** 31 - 1, signal);
  const removing = api.patchNodeAnnotations(nodeName, { [ANNOTATION_INGRESS_PORTS]: null }).catch(() => undefined);
  await Promise.race([removing, new Promise((resolve) => setTimeout(resolve, UNANNOUNCE_WAIT_MS).unref())]);
}

type Keyed = { metadata: { name?: string; namespace?: string; resourceVersion?: string } };

function keyOf(o: Keyed): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}

function replaceAll<T extends Keyed>(m: Map<string, T>, items: readonly T[]): boolean {
  const changed = items.length !== m.size || items.some((i) => m.get(keyOf(i))?.metadata.resourceVersion !== i.metadata.resourceVersion);
  m.clear();
  for (const i of items) m.set(keyOf(i), i);
  return changed;
}

function applyEvent<T extends Keyed>(m: Map<string, T>, e: ObjectEvent<T>): boolean {
  const key = keyOf(e.object);
  if (e.type === 'DELETED') return m.delete(key);
  if (m.get(key)?.metadata.resourceVersion === e.object.metadata.resourceVersion) return false;
  m.set(key, e.object);
  return true;
}
