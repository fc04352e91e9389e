// The objects a pod's spec names, by resource: what its node must read to run it. The agent fetches them
// (node-agent/agent.ts); the Node authorizer lets a node read exactly these (server/objects/node-graph.ts).
import type { Pod } from './objects.js';

export interface PodReferences {
  configMaps: Set<string>;
  /** Named by env, envFrom and volumes: what the containers see. */
  secrets: Set<string>;
  /** spec.imagePullSecrets: what pulling the images needs. */
  imagePullSecrets: Set<string>;
  persistentVolumeClaims: Set<string>;
}

/** The names (in the pod's namespace) of the ConfigMaps, Secrets and PersistentVolumeClaims the pod references. */
export function podReferences(pod: Pick<Pod, 'spec'>): PodReferences {
  const refs: PodReferences = { configMaps: new Set(), secrets: new Set(), imagePullSecrets: new Set(), persistentVolumeClaims: new Set() };
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    // Kubernetes defaults an omitted reference name to "" (validation refuses it; the lookup then finds nothing).
    for (const e of c.env ?? []) {
      if (e.valueFrom?.configMapKeyRef) refs.configMaps.add(e.valueFrom.configMapKeyRef.name ?? '');
      if (e.valueFrom?.secretKeyRef) refs.secrets.add(e.valueFrom.secretKeyRef.name ?? '');
    }
    for (const f of c.envFrom ?? []) {
      if (f.configMapRef) refs.configMaps.add(f.configMapRef.name ?? '');
      if (f.secretRef) refs.secrets.add(f.secretRef.name ?? '');
    }
  }
  for (const v of pod.spec.volumes ?? []) {
    if (v.configMap) refs.configMaps.add(v.configMap.name ?? '');
    if (v.secret) refs.secrets.add(v.secret.secretName ?? '');
    if (v.persistentVolumeClaim) refs.persistentVolumeClaims.add(v.persistentVolumeClaim.claimName);
    for (const p of v.projected?.sources ?? []) {
      if (p.configMap) refs.configMaps.add(p.configMap.name ?? '');
      if (p.secret) refs.secrets.add(p.secret.name ?? '');
    }
  }
  for (const s of pod.spec.imagePullSecrets ?? []) refs.imagePullSecrets.add(s.name);
  return refs;
}
