// The node side of persistent storage: the volumes of a pod's PersistentVolumeClaims (claim -> bound volume), the
// host directory each is mounted from, and the removal of local-path directories whose volume is deleted.
//
// Local-path volumes (provisioner flotilla.io/local-path) live in <data dir>/storage/<volume name>, published to
// the servers in Node annotation flotilla.io/local-path-dir. The directory is made (mode 0777, as k3s does) when
// the first pod uses it and stays across pod deletions and agent restarts; once the volume is being deleted (its
// claim gone, reclaim policy Delete) the agent removes the directory and then the volume's cleanup finalizer.
import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ANNOTATION_LOCAL_PATH_DIR, ANNOTATION_PROVISIONED_BY, FINALIZER_LOCAL_PATH, LOCAL_PATH_PROVISIONER, podReferences } from '../api-types/index.js';
import type { PersistentVolume, PersistentVolumeClaim, Pod } from '../api-types/index.js';
import { ContainerConfigError } from './container-config.js';

/** Where an agent keeps its local-path volumes. */
export function localPathDir(dataDir: string): string {
  return join(dataDir, 'storage');
}

/** The Node as this agent registers it: with the directory of its local-path volumes. */
export function withLocalPathDir<T extends { metadata: { annotations?: Record<string, string> } }>(node: T, dataDir: string): T {
  return { ...node, metadata: { ...node.metadata, annotations: { ...node.metadata.annotations, [ANNOTATION_LOCAL_PATH_DIR]: localPathDir(dataDir) } } };
}

/** The reads the agent makes for a pod's claims. */
export interface ClaimReads {
  claim(namespace: string, name: string): Promise<PersistentVolumeClaim | undefined>;
  volume(name: string): Promise<PersistentVolume | undefined>;
}

/** The volume of each of the pod's claims, by claim name; a claim not bound yet (or its volume not readable yet) is left out. */
export async function claimVolumes(pod: Pod, reads: ClaimReads): Promise<Record<string, PersistentVolume>> {
  const out: Record<string, PersistentVolume> = {};
  const namespace = pod.metadata.namespace ?? 'default';
  await Promise.all([...podReferences(pod).persistentVolumeClaims].map(async (name) => {
    const claim = await reads.claim(namespace, name);
    if (!claim?.spec.volumeName || claim.status?.phase !== 'Bound') return;
    const volume = await reads.volume(claim.spec.volumeName);
    if (volume) out[name] = volume;
  }));
  return out;
}

/**
 * The host path a claim's volume is mounted from: a hostPath volume's path (made when its type is
 * DirectoryOrCreate, mode 0755, 0777 for a local-path volume), a local volume's path (which must exist). An unbound
 * claim is a ContainerConfigError, retried as the claim's inputs are read again.
 */
export async function prepareClaimVolume(claimName: string, volume: PersistentVolume | undefined): Promise<string> {
  if (!volume) throw new ContainerConfigError(`persistentvolumeclaim "${claimName}" is not bound to a volume yet`);
  const { hostPath, local, nfs } = volume.spec;
  if (hostPath) {
    if (hostPath.type === 'DirectoryOrCreate') {
      // As the kubelet: 0755; k3s' local-path directories are world-writable (chmod: the umask takes bits off mkdir's mode), so any container user can write.
      const localPath = volume.metadata.annotations?.[ANNOTATION_PROVISIONED_BY] === LOCAL_PATH_PROVISIONER;
      await mkdir(hostPath.path, { recursive: true, mode: 0o755 });
      if (localPath) await chmod(hostPath.path, 0o777);
    }
    return hostPath.path;
  }
  if (local) return local.path;
  if (nfs) return nfsVolumeName(volume);
  throw new ContainerConfigError(`persistentvolume "${volume.metadata.name}" has no volume source this node can mount`);
}

/** The Docker volume an NFS PersistentVolume is mounted through (a name, not a path: Docker binds it by name). */
export function nfsVolumeName(volume: PersistentVolume): string {
  return `flotilla-pv-${volume.metadata.name}`;
}

/** The options Docker's local volume driver mounts an NFS PersistentVolume with (VolumeCreateOptions). */
export function nfsVolumeOptions(volume: PersistentVolume): { Name: string; Driver: 'local'; DriverOpts: Record<string, string> } {
  const nfs = volume.spec.nfs;
  if (!nfs) throw new Error(`persistentvolume "${volume.metadata.name}" is not an NFS volume`);
  const options = [`addr=${nfs.server}`, ...(nfs.readOnly ? ['ro'] : []), ...(volume.spec.mountOptions ?? [])];
  return { Name: nfsVolumeName(volume), Driver: 'local', DriverOpts: { type: 'nfs', o: options.join(','), device: `:${nfs.path}` } };
}

/** What the cleanup reads and writes of the volumes. */
export interface VolumeCleanupApi {
  getPersistentVolume(name: string): Promise<PersistentVolume | undefined>;
  removeVolumeFinalizer(volume: PersistentVolume, finalizer: string): Promise<void>;
}

/**
 * Removes the local-path directories of volumes being deleted, then their cleanup finalizer; returns the volume
 * names removed. A directory whose volume exists and is not being deleted, or cannot be read, is kept: data is
 * never removed on doubt. A directory whose volume is gone (its finalizer removed by hand) is kept too.
 */
export async function cleanUpLocalVolumes(dataDir: string, api: VolumeCleanupApi, log?: Logger): Promise<string[]> {
  const root = localPathDir(dataDir);
  const names = await readdir(root).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err; });
  const removed: string[] = [];
  for (const name of names) {
    const volume = await api.getPersistentVolume(name).catch((err: unknown) => { log?.warn({ err: (err as Error).message, volume: name }, 'reading a local-path volume failed; its directory is kept'); return undefined; });
    if (!volume?.metadata.deletionTimestamp || !volume.metadata.finalizers?.includes(FINALIZER_LOCAL_PATH)) continue;
    await rm(join(root, name), { recursive: true, force: true });
    await api.removeVolumeFinalizer(volume, FINALIZER_LOCAL_PATH);
    log?.info({ volume: name }, 'removed the directory of a deleted local-path volume');
    removed.push(name);
  }
  return removed;
}
