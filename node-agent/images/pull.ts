// The image step of a container start: the one place that decides whether and where an image is pulled, and
// says so in the pod's Events as the kubelet does (pkg/kubelet/images EnsureImageExists, kuberuntime PullImage):
//
//   policy   image present  what happens
//   Never    yes            Pulled "Container image "X" already present on machine"
//   Never    no             ErrImageNeverPull (retried on the crash back-off base, never pulled: `image load` fixes it)
//   IfNotPr. yes            Pulled "... already present on machine"
//   IfNotPr. no             Pulling; a peer node's copy (peerImages) if one has it; else the registry
//   Always   either         Pulling; the registry (an unchanged image costs a manifest request); only when the
//                           registry cannot be reached: the present copy (RegistryUnavailable warning), else a peer
//
// A registry pull tries each credential the pod's pull secrets have for the image's registry (registry-auth.ts),
// anonymous when none; one that is refused for authentication says so (ErrImagePull "authentication failed ...").
// Progress goes to the log and to `Pulling` Events at most once per progress interval, never per chunk.
import type { Logger } from 'pino';
import { parseImageReference, withDefaultTag } from '../../api-types/index.js';
import { formatDuration } from '../pod-actions.js';
import type { PodEvent } from '../pod-events.js';
import { ImagePullError, type ContainerRuntime, type PullProgress } from '../runtime/types.js';
import { PullSecretError, type PodPullCredentials, type PullCredential } from './registry-auth.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

/**
 * Fetches an image from another node of the cluster into this node's runtime; resolves true when a peer
 * supplied it, false when no peer has it (node-agent/images/peer-fetch.ts).
 */
export type PeerImageSource = (image: string, signal?: AbortSignal) => Promise<boolean>;

export interface ImageStepSettings {
  runtime: ContainerRuntime;
  peerImages?: PeerImageSource;
  /** The pod's Events (PodWorkerSettings.onEvent). */
  emit: (type: PodEvent['type'], reason: string, message: string) => void;
  /** Bound to the pod. */
  log: Logger;
  /** At most one progress Event and log line per this many ms of a pull. */
  progressIntervalMs: number;
  /** Ends a pull under way (the pod is being deleted). */
  signal?: AbortSignal;
  now?: () => number;
}

/** Bytes of a pull so far, over the layers whose size the registry has told (Docker's per-layer progress). */
export class PullProgressMeter {
  readonly #layers = new Map<string, { current: number; total: number }>();

  update(event: Parameters<PullProgress>[0]): void {
    if (!event.layer) return;
    const layer = this.#layers.get(event.layer);
    if (event.status === 'Downloading' && event.total !== undefined && event.total > 0) {
      this.#layers.set(event.layer, { current: event.current ?? 0, total: event.total });
    } else if (layer && /^(Download complete|Verifying Checksum|Extracting|Pull complete)$/.test(event.status)) {
      layer.current = layer.total;
    }
  }

  get bytes(): { current: number; total: number } {
    let current = 0;
    let total = 0;
    for (const l of this.#layers.values()) {
      current += l.current;
      total += l.total;
    }
    return { current, total };
  }
}

/** Decimal megabytes with one decimal, as Docker's progress bars count: "40.2 MB". */
function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** What a registry's refusal means: wrong or missing credentials, a registry out of reach, or anything else. */
export function pullFailureKind(message: string): 'unauthorized' | 'unreachable' | 'other' {
  if (/unauthorized|authentication required|no basic auth credentials|incorrect username or password/i.test(message)) return 'unauthorized';
  if (/dial (?:tcp|udp)|no such host|connection refused|i\/o timeout|network is unreachable|no route to host|Client\.Timeout exceeded|TLS handshake timeout|server misbehaving|connection reset by peer|Temporary failure in name resolution/.test(message)) return 'unreachable';
  return 'other';
}

/**
 * Makes a container's image present by its pull policy (the table above), with the Events of the kubelet.
 * `credentials` are asked for only when the registry is. Throws ImagePullError: InvalidImageName,
 * ErrImageNeverPull, or ErrImagePull with the registry's words; rethrows the signal's reason when aborted.
 */
export async function ensureContainerImage(s: ImageStepSettings, image: string, policy: PullPolicy, credentials: PodPullCredentials): Promise<void> {
  const now = s.now ?? Date.now;
  if (credentials.missing.length > 0) {
    s.emit('Warning', 'FailedToRetrieveImagePullSecret', `Unable to retrieve some image pull secrets (${credentials.missing.join(', ')}); attempting to pull the image may not succeed.`);
  }
  let shown: string;
  try {
    shown = withDefaultTag(image);
  } catch (err) {
    const message = `Failed to apply default image tag "${image}": couldn't parse image name "${image}": ${(err as Error).message}`;
    s.emit('Warning', 'InspectFailed', message);
    throw new ImagePullError(image, 'InvalidImageName', message);
  }
  const present = await s.runtime.inspectImage(image);
  const alreadyPresent = () => s.emit('Normal', 'Pulled', `Container image "${shown}" already present on machine`);
  if (policy === 'Never' || (policy === 'IfNotPresent' && present)) {
    if (present) return alreadyPresent();
    const message = `Container image "${shown}" is not present with pull policy of Never`;
    s.emit('Warning', 'ErrImageNeverPull', message);
    throw new ImagePullError(image, 'ErrImageNeverPull', message);
  }

  s.emit('Normal', 'Pulling', `Pulling image "${shown}"`);
  const begun = now();
  const pulled = async (from: string, startedAt: number) => {
    const size = (await s.runtime.inspectImage(image))?.sizeBytes ?? 0;
    const took = (t: number) => formatDuration(Math.floor(now() - t));
    s.emit('Normal', 'Pulled', `Successfully pulled image "${shown}"${from} in ${took(startedAt)} (${took(begun)} including waiting). Image size: ${size} bytes.`);
  };
  const fromPeer = async (): Promise<boolean> => {
    if (!s.peerImages) return false;
    const startedAt = now();
    const supplied = await s.peerImages(image, s.signal).catch((err: unknown) => {
      s.log.warn({ image, err: (err as Error).message }, 'fetching the image from a peer node failed; trying elsewhere');
      return false;
    });
    if (supplied) await pulled(' from a peer node', startedAt);
    return supplied;
  };

  if (policy === 'IfNotPresent' && await fromPeer()) return;
  const startedAt = now();
  const failure = await pullFromRegistry(s, image, shown, credentials);
  if (failure === undefined) return pulled('', startedAt);
  if (policy === 'Always' && pullFailureKind(failure.message) === 'unreachable') {
    if (present) {
      s.emit('Warning', 'RegistryUnavailable', `image pull failed for ${shown} because the registry is unavailable: ${failure.message}; using the image present on machine`);
      return alreadyPresent();
    }
    if (await fromPeer()) return;
  }
  s.emit('Warning', 'Failed', `Failed to pull image "${shown}": ${failure.message}`);
  throw failure;
}

/** One registry pull, each of the image's credentials in turn (anonymous without any); undefined once one works. */
async function pullFromRegistry(s: ImageStepSettings, image: string, shown: string, credentials: PodPullCredentials): Promise<ImagePullError | undefined> {
  let tried: PullCredential[];
  try {
    tried = credentials.lookup(image);
  } catch (err) {
    if (err instanceof PullSecretError) return new ImagePullError(image, 'ErrImagePull', err.message);
    throw err;
  }
  const now = s.now ?? Date.now;
  const meter = new PullProgressMeter();
  let lastReport = now();
  let reported = 0;
  const onProgress: PullProgress = (event) => {
    meter.update(event);
    const { current, total } = meter.bytes;
    if (total === 0 || current === reported || now() - lastReport < s.progressIntervalMs) return;
    lastReport = now();
    reported = current;
    s.log.info({ image, currentBytes: current, totalBytes: total }, 'pulling image');
    s.emit('Normal', 'Pulling', `Pulling image "${shown}": ${megabytes(current)} of ${megabytes(total)}`);
  };
  const errors: ImagePullError[] = [];
  for (const credential of tried.length > 0 ? tried : [undefined]) {
    try {
      await s.runtime.pullImage(image, { ...(credential ? { auth: credential.auth } : {}), onProgress, ...(s.signal ? { signal: s.signal } : {}) });
      return undefined;
    } catch (err) {
      if (s.signal?.aborted) throw s.signal.reason;
      if (!(err instanceof ImagePullError)) throw err;
      errors.push(err);
    }
  }
  if (errors.every((e) => pullFailureKind(e.message) === 'unauthorized')) {
    const registry = parseImageReference(image).domain;
    const last = errors[errors.length - 1]!.message;
    const message = tried.length > 0
      ? `authentication failed: registry ${registry} refused the credentials of pull secret${tried.length > 1 ? 's' : ''} ${[...new Set(tried.map((c) => `"${c.secret}"`))].join(', ')}: ${last}`
      : `authentication failed: registry ${registry} requires credentials and no imagePullSecret of the pod has any for it: ${last}`;
    return new ImagePullError(image, 'ErrImagePull', message);
  }
  // Several failures read as the kubelet's aggregate error: [first, second].
  return errors.length === 1 ? errors[0]! : new ImagePullError(image, 'ErrImagePull', `[${errors.map((e) => e.message).join(', ')}]`);
}
