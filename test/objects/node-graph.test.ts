// The Node authorizer's pod graph on a real SQLite store with many pods: every answer is right, the pods are
// listed once (at the first question), and from then on the graph follows the store's watch, not a scan.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resourceOfKind } from '../../api-types/index.js';
import { ObjectService } from '../../server/objects/service.js';
import { PodGraph } from '../../server/objects/node-graph.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import type { Objects } from '../../server/objects/service.js';

const pods = resourceOfKind('Pod');
const NODES = 50;
const PODS = 2000;

const podOf = (i: number) => ({
  metadata: { name: `p${i}` },
  spec: {
    nodeName: `n${i % NODES}`,
    containers: [{ name: 'main', image: 'busybox', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: `s${i}`, key: 'k' } } }], envFrom: [{ configMapRef: { name: 'shared' } }] }],
  },
});

test('many pods: each node reaches exactly its pods\' objects, the store is listed once, and moves are followed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-node-graph-'));
  const store = new SqliteStore({ path: join(dir, 'state.db') });
  try {
    const objects = new ObjectService(store, new LocalProposer(store));
    await objects.create(resourceOfKind('Namespace'), undefined, { metadata: { name: 'default' } });
    await objects.create(resourceOfKind('ServiceAccount'), 'default', { metadata: { name: 'default' } });
    await Promise.all(Array.from({ length: PODS }, (_, i) => objects.create(pods, 'default', podOf(i))));
    let lists = 0;
    const counted: Pick<Objects, 'get' | 'list' | 'watch'> = {
      get: (r, ns, name) => objects.get(r, ns, name),
      list: (r, ns) => { lists++; return objects.list(r, ns); },
      watch: (r, ns, from, onEvent, onClose) => objects.watch(r, ns, from, onEvent, onClose),
    };
    const graph = new PodGraph(counted);
    for (let i = 0; i < PODS; i++) {
      const node = `n${i % NODES}`;
      assert.ok(graph.referencedBy(node, 'secrets', 'default', `s${i}`), `${node} reaches s${i}`);
      assert.not.ok(graph.referencedBy(`n${(i + 1) % NODES}`, 'secrets', 'default', `s${i}`), `only ${node} reaches s${i}`);
      assert.is(graph.nodeOfPod('default', `p${i}`), node);
    }
    assert.ok(graph.referencedBy('n7', 'configmaps', 'default', 'shared'));
    assert.not.ok(graph.referencedBy('n7', 'secrets', 'default', 'shared'), 'a ConfigMap reference gives no Secret of that name');
    assert.is(lists, 2, 'the pods (and the Ingresses, for the TLS Secrets) were listed once');
    // Pods going and coming are followed by watch.
    await objects.delete(pods, 'default', 'p7', { gracePeriodSeconds: 0 });
    assert.is(graph.nodeOfPod('default', 'p7'), undefined);
    assert.not.ok(graph.referencedBy('n7', 'secrets', 'default', 's7'));
    assert.ok(graph.referencedBy('n7', 'configmaps', 'default', 'shared'), 'the other pods of n7 still reference it');
    await objects.create(pods, 'default', { ...podOf(7), metadata: { name: 'p7-again' }, spec: { ...podOf(7).spec, nodeName: undefined } });
    assert.not.ok(graph.referencedBy('n7', 'secrets', 'default', 's7'), 'an unbound pod gives no node anything');
    await objects.bindPod('default', 'p7-again', 'n8');
    assert.ok(graph.referencedBy('n8', 'secrets', 'default', 's7'));
    assert.is(graph.nodeOfPod('default', 'p7-again'), 'n8');
    assert.is(lists, 2, 'no question scanned the pods again');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every node reaches the Secrets named in tls[] of Ingresses of a class flotilla.io/ingress serves, and only those', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-node-graph-'));
  const store = new SqliteStore({ path: join(dir, 'state.db') });
  try {
    const objects = new ObjectService(store, new LocalProposer(store));
    await objects.create(resourceOfKind('Namespace'), undefined, { metadata: { name: 'default' } });
    await objects.create(resourceOfKind('ServiceAccount'), 'default', { metadata: { name: 'default' } });
    const classes = resourceOfKind('IngressClass');
    const ingresses = resourceOfKind('Ingress');
    await objects.create(classes, undefined, { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'flotilla' }, spec: { controller: 'flotilla.io/ingress' } });
    await objects.create(classes, undefined, { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'other' }, spec: { controller: 'example.com/other' } });
    const ingress = (name: string, cls: string, secret: string) => ({
      apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name },
      spec: { ingressClassName: cls, tls: [{ hosts: ['a.test'], secretName: secret }], defaultBackend: { service: { name: 'web', port: { number: 80 } } } },
    });
    await objects.create(ingresses, 'default', ingress('mine', 'flotilla', 'mine-tls'));
    await objects.create(ingresses, 'default', ingress('theirs', 'other', 'their-tls'));
    const graph = new PodGraph(objects);
    assert.ok(graph.referencedBy('n1', 'secrets', 'default', 'mine-tls'));
    assert.ok(graph.referencedBy('n2', 'secrets', 'default', 'mine-tls'), 'every node is a router');
    assert.not.ok(graph.referencedBy('n1', 'secrets', 'default', 'their-tls'), 'another controller\'s Ingress gives nothing');
    assert.not.ok(graph.referencedBy('n1', 'configmaps', 'default', 'mine-tls'));
    assert.not.ok(graph.referencedBy('n1', 'secrets', 'kube-system', 'mine-tls'), 'the Ingress\'s own namespace only');
    // Followed by watch: a class that changes its controller, an Ingress deleted.
    await objects.replace(classes, undefined, 'other', { ...objects.get(classes, undefined, 'other')!, spec: { controller: 'flotilla.io/ingress' } });
    assert.ok(graph.referencedBy('n1', 'secrets', 'default', 'their-tls'));
    await objects.delete(ingresses, 'default', 'mine');
    assert.not.ok(graph.referencedBy('n1', 'secrets', 'default', 'mine-tls'));
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
