// Scenario files for the Node authorizer (test/api/testdata/node-authorizer/*.txt), replayed by the datadriven
// runner (test/support/datadriven.ts; FLOTILLA_REWRITE=1 rewrites them). The pod graph is the real PodGraph
// over a MemoryStore, so the scenarios also follow it as pods come, move on and go.
//
// Commands:
//   pod NS/NAME [node=N] [secrets=A,B] [configmaps=C] [pvcs=D] [pull=E]   (creates or replaces a pod)
//   pv NAME [claim=NS/NAME] [local=N]   (creates a PersistentVolume, bound to the claim, or a local-path one on node N)
//   delete-pod NS/NAME
//   node N METHOD PATH        (the request of user system:node:N: "allowed", or "forbidden: MESSAGE")
//   join METHOD PATH          (the request of a join token that is bootstrap-only)
import { test } from 'uvu';
import { randomUUID } from 'node:crypto';
import { MemoryStore } from '../../server/store/memory-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';
import type { Command } from '../../server/store/types.js';
import { PodGraph } from '../../server/objects/node-graph.js';
import { authorizeNode } from '../../server/api/middleware/node-authorizer.js';
import { BOOTSTRAPPERS_GROUP, identity } from '../../server/api/middleware/auth.js';
import { authorize } from '../../server/auth/policy.js';
import { StoredPolicy, attributesOf } from '../../server/auth/rbac.js';
import type { Decision } from '../../server/api/middleware/node-authorizer.js';
import { requestInfo } from '../../server/api/request-info.js';
import { scenarioTests } from '../support/datadriven.js';
import { ANNOTATION_PROVISIONED_BY, LOCAL_PATH_PROVISIONER } from '../../api-types/index.js';

class AuthorizerRunner {
  private readonly store = new MemoryStore();
  private readonly objects = new ObjectService(this.store, new LocalProposer(this.store));
  private readonly graph = new PodGraph(this.objects);
  private readonly rbac = new StoredPolicy(this.objects);

  run(command: string): string {
    const [verb, ...rest] = command.trim().split(/\s+/);
    const args = Object.fromEntries(rest.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    const list = (key: string) => (args[key] ? args[key].split(',') : []);
    switch (verb) {
      case 'pod': {
        const [namespace, name] = this.split(rest[0]);
        const env = [...list('secrets').map((s, i) => ({ name: `S${i}`, valueFrom: { secretKeyRef: { name: s, key: 'k' } } })),
          ...list('configmaps').map((c) => ({ configMapRef: { name: c } }))];
        const pod = {
          apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace },
          spec: {
            ...(args.node ? { nodeName: args.node } : {}),
            containers: [{ name: 'main', image: 'busybox', env: env.filter((e) => 'valueFrom' in e), envFrom: env.filter((e) => 'configMapRef' in e) }],
            volumes: list('pvcs').map((claimName, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName } })),
            imagePullSecrets: list('pull').map((s) => ({ name: s })),
          },
        };
        const exists = this.store.get('pods', namespace, name) !== undefined;
        this.apply(exists ? { op: 'update', resource: 'pods', object: pod } : { op: 'create', resource: 'pods', object: pod, uid: randomUUID(), now: new Date().toISOString() });
        return '';
      }
      case 'pv': {
        const name = rest[0]!;
        const claim = args.claim ? this.split(args.claim) : undefined;
        const volume = {
          apiVersion: 'v1', kind: 'PersistentVolume',
          metadata: { name, ...(args.local ? { annotations: { [ANNOTATION_PROVISIONED_BY]: LOCAL_PATH_PROVISIONER } } : {}) },
          spec: {
            capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: `/srv/${name}` },
            ...(claim ? { claimRef: { namespace: claim[0], name: claim[1] } } : {}),
            ...(args.local ? { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [args.local] }] }] } } } : {}),
          },
        };
        this.apply({ op: 'create', resource: 'persistentvolumes', object: volume, uid: randomUUID(), now: new Date().toISOString() });
        return '';
      }
      case 'delete-pod': {
        const [namespace, name] = this.split(rest[0]);
        this.apply({ op: 'delete', resource: 'pods', namespace, name });
        return '';
      }
      case 'node': {
        const [node, method, path] = rest as [string, string, string];
        return show(authorizeNode(`system:node:${node}`, node, info(method, path), path.split('?')[0]!, method, this.graph));
      }
      case 'join': {
        const [method, path] = rest as [string, string];
        // A join token is decided by the bootstrap policy: system:node-bootstrapper, bound to its group.
        const request = info(method, path);
        const user = identity('system:bootstrap:abc123', [BOOTSTRAPPERS_GROUP]);
        return show(authorize({ graph: this.graph, rbac: this.rbac }, attributesOf(user, request, method, path.split('?')[0]!), request));
      }
    }
    throw new Error(`unknown command "${verb}"`);
  }

  private split(key: string | undefined): [string, string] {
    const [namespace, name] = (key ?? '').split('/');
    if (!namespace || !name) throw new Error(`want NS/NAME, got "${key}"`);
    return [namespace, name];
  }

  private apply(command: Command): void {
    const [result] = this.store.apply([{ command, revision: this.store.revision() + 1 }]);
    if (!result?.ok) throw new Error(`store: ${result?.failure.message}`);
  }
}

function info(method: string, path: string) {
  const url = new URL(path, 'http://x');
  return requestInfo(method, url.pathname, url.searchParams.get('watch') ?? undefined);
}

function show(d: Decision): string {
  return d.allowed ? 'allowed' : `forbidden: ${d.message}`;
}

scenarioTests(test, 'test/api/testdata/node-authorizer', () => new AuthorizerRunner());
test.run();
