// Scenario files for the allocations made in the state machine's apply (server/network/allocator.ts), replayed by
// the datadriven runner (test/support/datadriven.ts; FLOTILLA_REWRITE=1 rewrites them) over a MemoryStore, the
// state machine every store runs. Objects are in namespace default; uids are uid-NAME-N (N counts creates).
//
// Commands:
//   settings [serviceCIDR=C] [nodePortRange=A-B] [clusterCIDR=C]    (publish kube-system/flotilla-network)
//   svc create|update NAME [type=T] [ip=IP|None] [ports=80,443:30443,53/UDP:30053,...]   (port[/PROTO][:nodePort])
//   svc delete NAME | svc finalize NAME   (delete with a finalizer held: marked only; finalize removes it)
//   node create|update NAME [cidr=C] | node status NAME | node delete NAME
//   pool create|update NAME addresses=R[,R...] [autoAssign=false] | pool delete NAME   (AddressPools)
//   svc ... [lbip=IP] [lbips=IP[,IP]] [status=IP]   (spec.loadBalancerIP, the flotilla.io/load-balancer-ips annotation,
//                                                    a status write of status.loadBalancer.ingress; op "status")
//   allocations   (every allocation row, pool by pool: "value owner")
import { test } from 'uvu';
import { MemoryStore } from '../../server/store/memory-store.js';
import { ALLOCATIONS_RESOURCE, POOLS } from '../../server/network/allocator.js';
import type { Command, StoredObject } from '../../server/store/types.js';
import { ANNOTATION_LOAD_BALANCER_IPS, NETWORK_SETTINGS_CONFIGMAP } from '../../api-types/index.js';
import type { Node, Service, ServicePort } from '../../api-types/index.js';
import { scenarioTests } from '../support/datadriven.js';

const NOW = '2026-01-01T00:00:00Z';

class AllocatorRunner {
  private readonly store = new MemoryStore();
  private revision = 0;
  private creates = 0;

  run(command: string): string {
    const [verb, ...rest] = command.trim().split(/\s+/);
    const args = Object.fromEntries(rest.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    const words = rest.filter((a) => !a.includes('='));
    switch (verb) {
      case 'settings':
        return this.apply({
          op: 'create', resource: 'configmaps', uid: 'uid-settings', now: NOW,
          object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: NETWORK_SETTINGS_CONFIGMAP.name, namespace: NETWORK_SETTINGS_CONFIGMAP.namespace }, data: args },
        });
      case 'svc': return this.service(words[0] ?? '', words[1] ?? '', args);
      case 'node': return this.node(words[0] ?? '', words[1] ?? '', args);
      case 'pool': return this.pool(words[0] ?? '', words[1] ?? '', args);
      case 'allocations': return this.allocations();
      default: throw new Error(`unknown command "${verb}"`);
    }
  }

  private service(op: string, name: string, args: Record<string, string>): string {
    if (op === 'delete') return this.apply({ op: 'delete', resource: 'services', namespace: 'default', name, now: NOW });
    if (op === 'status') {
      const current = this.store.get('services', 'default', name)!;
      return this.apply({ op: 'update', resource: 'services', subresource: 'status', object: { ...current, status: { loadBalancer: { ingress: (args.status ?? '').split(',').filter(Boolean).map((ip) => ({ ip })) } } } });
    }
    if (op === 'finalize') {
      const current = this.store.get('services', 'default', name)!;
      return this.apply({ op: 'update', resource: 'services', object: { ...current, metadata: { ...current.metadata, finalizers: [] } } });
    }
    const ports: ServicePort[] | undefined = args.ports?.split(',').map((p, i) => {
      const m = /^(\d+)(?:\/(TCP|UDP))?(?::(\d+))?$/.exec(p);
      if (!m) throw new Error(`port "${p}"`);
      return { name: `p${i}`, port: Number(m[1]), protocol: (m[2] ?? 'TCP') as 'TCP' | 'UDP', ...(m[3] ? { nodePort: Number(m[3]) } : {}) };
    });
    const spec: Service['spec'] = {
      type: (args.type ?? 'ClusterIP') as 'ClusterIP', ...(args.ip ? { clusterIP: args.ip } : {}), ...(ports ? { ports } : {}),
      ...(args.type === 'ExternalName' ? { externalName: 'example.com' } : {}),
      ...(args.lbip ? { loadBalancerIP: args.lbip } : {}),
    };
    const metadata = {
      name, namespace: 'default', ...(args.finalizer ? { finalizers: [args.finalizer] } : {}),
      ...(args.lbips ? { annotations: { [ANNOTATION_LOAD_BALANCER_IPS]: args.lbips } } : {}),
    };
    const object: StoredObject = { apiVersion: 'v1', kind: 'Service', metadata, spec };
    return op === 'create'
      ? this.apply({ op: 'create', resource: 'services', object, uid: `uid-${name}-${++this.creates}`, now: NOW })
      : this.apply({ op: 'update', resource: 'services', object });
  }

  private node(op: string, name: string, args: Record<string, string>): string {
    if (op === 'delete') return this.apply({ op: 'delete', resource: 'nodes', namespace: '', name });
    if (op === 'status') {
      const current = this.store.get('nodes', '', name)!;
      return this.apply({ op: 'update', resource: 'nodes', subresource: 'status', object: { ...current, status: { conditions: [{ type: 'Ready', status: 'True' }] } } });
    }
    const object: StoredObject = { apiVersion: 'v1', kind: 'Node', metadata: { name }, ...(args.cidr !== undefined ? { spec: { podCIDR: args.cidr } } : {}) };
    return op === 'create'
      ? this.apply({ op: 'create', resource: 'nodes', object, uid: `uid-${name}-${++this.creates}`, now: NOW })
      : this.apply({ op: 'update', resource: 'nodes', object });
  }

  private pool(op: string, name: string, args: Record<string, string>): string {
    if (op === 'delete') return this.apply({ op: 'delete', resource: 'addresspools.flotilla.io', namespace: '', name });
    const object: StoredObject = {
      apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name },
      spec: { addresses: (args.addresses ?? '').split(',').filter(Boolean), ...(args.autoAssign ? { autoAssign: args.autoAssign === 'true' } : {}) },
    };
    return op === 'create'
      ? this.apply({ op: 'create', resource: 'addresspools.flotilla.io', object, uid: `uid-${name}-${++this.creates}`, now: NOW })
      : this.apply({ op: 'update', resource: 'addresspools.flotilla.io', object });
  }

  private apply(command: Command): string {
    const [result] = this.store.apply([{ command, revision: ++this.revision }]);
    if (!result!.ok) return `error ${result!.failure.code} ${result!.failure.reason}: ${result!.failure.message}`;
    const o = result!.object;
    if (o.kind === 'Service') {
      const spec = (o as Service).spec ?? {};
      const ports = (spec.ports ?? []).map((p) => `${p.port}/${p.protocol}${p.nodePort ? `:${p.nodePort}` : ''}`).join(',');
      const ingress = (o as Service).status?.loadBalancer?.ingress;
      const lb = spec.loadBalancerIP || ingress ? ` loadBalancerIP=${spec.loadBalancerIP ?? '-'} ingress=${JSON.stringify((ingress ?? []).map((i) => i.ip))}` : '';
      return `${result!.type} ${o.metadata.name}${o.metadata.deletionTimestamp ? ' (deleting)' : ''} clusterIP=${spec.clusterIP ?? '-'} clusterIPs=${JSON.stringify(spec.clusterIPs ?? [])}${ports ? ` ports=${ports}` : ''}${lb}`;
    }
    if (o.kind === 'Node') {
      const spec = (o as Node).spec ?? {};
      return `${result!.type} ${o.metadata.name} podCIDR=${spec.podCIDR ?? '-'} podCIDRs=${JSON.stringify(spec.podCIDRs ?? [])} generation=${o.metadata.generation}`;
    }
    if (o.kind === 'AddressPool') {
      const spec = o.spec as { addresses: string[]; autoAssign?: boolean };
      return `${result!.type} AddressPool ${o.metadata.name} addresses=${spec.addresses.join(',')} autoAssign=${spec.autoAssign}`;
    }
    return `${result!.type} ${o.kind} ${o.metadata.name}`;
  }

  private allocations(): string {
    const rows = this.store.list(ALLOCATIONS_RESOURCE).items;
    // lb-ips only where a scenario holds some (the other files predate it).
    return POOLS.filter((pool) => pool !== 'lb-ips' || rows.some((r) => r.metadata.namespace === pool)).map((pool) => {
      const mine = rows.filter((r) => r.metadata.namespace === pool).map((r) => {
        const owner = r.spec as { namespace: string; name: string; uid: string };
        return `${r.metadata.name} ${owner.namespace ? `${owner.namespace}/` : ''}${owner.name}`;
      });
      return `${pool}: ${mine.length === 0 ? '(none)' : mine.join(', ')}`;
    }).join('\n');
  }
}

scenarioTests(test, 'test/network/testdata/allocator', () => new AllocatorRunner());

test.run();
