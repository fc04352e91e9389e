import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allResources } from '../../api-types/index.js';
import { ClusterSim, R, webDeployment } from './cluster-sim.js';

const namespaced = allResources.filter((r) => r.namespaced);

/** Every namespaced object in `namespace`, as "plural/name", sorted. */
function contents(sim: ClusterSim, namespace: string): string[] {
  return namespaced.flatMap((r) => sim.objects.list(r, namespace).items.map((o) => `${r.plural}/${o.metadata.name}`)).sort();
}

/** One object of (nearly) every namespaced kind in `namespace`, a Deployment with pods among them. */
async function populate(sim: ClusterSim, namespace: string): Promise<void> {
  await sim.objects.create(R('deployments'), namespace, webDeployment('web', 3, 'nginx:1.25'));
  await sim.objects.create(R('services'), namespace, { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
  await sim.objects.create(R('configmaps'), namespace, { metadata: { name: 'settings' }, data: { mode: 'fast' } });
  await sim.objects.create(R('secrets'), namespace, { metadata: { name: 'password' }, stringData: { password: 'x' } });
  await sim.objects.create(R('pods'), namespace, { metadata: { name: 'lonely' }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } });
  await sim.objects.create(R('leases'), namespace, { metadata: { name: 'lock' }, spec: { holderIdentity: 'someone' } });
  await sim.objects.create(R('jobs'), namespace, {
    metadata: { name: 'once' },
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1.36' }] } } },
  });
}

test('deleting a Namespace deletes every object left in it and nothing elsewhere', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    for (const ns of ['team', 'other']) {
      await sim.objects.create(R('namespaces'), undefined, { metadata: { name: ns } });
      await populate(sim, ns);
    }
    await populate(sim, 'default');
    await sim.step();
    const team = contents(sim, 'team');
    // The workload controllers made ReplicaSets, pods and events in it: those must go too.
    for (const kind of ['replicasets/', 'pods/web-', 'events/', 'services/', 'configmaps/', 'secrets/', 'leases/', 'jobs/', 'deployments/']) {
      assert.ok(team.some((k) => k.startsWith(kind)), `team holds ${kind} before the deletion: ${team.join(' ')}`);
    }
    const other = contents(sim, 'other');
    const defaults = contents(sim, 'default');

    await sim.objects.delete(R('namespaces'), undefined, 'team');
    await sim.step();
    assert.equal(contents(sim, 'team'), []);
    assert.equal(contents(sim, 'other'), other, 'another namespace is untouched');
    assert.equal(contents(sim, 'default'), defaults, 'the built-in namespace is untouched');
  } finally {
    await sim.stop();
  }
});

test('objects left in a namespace deleted while no leader ran are deleted when the controllers start', async () => {
  const sim = new ClusterSim();
  try {
    await sim.objects.create(R('namespaces'), undefined, { metadata: { name: 'gone' } });
    await sim.objects.create(R('configmaps'), 'gone', { metadata: { name: 'settings' }, data: { a: 'b' } });
    await sim.objects.create(R('secrets'), 'gone', { metadata: { name: 'password' }, stringData: { password: 'x' } });
    await sim.objects.delete(R('namespaces'), undefined, 'gone');
    assert.equal(contents(sim, 'gone'), ['configmaps/settings', 'secrets/password']);
    await sim.start();
    await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'kept' }, data: { a: 'b' } });
    await sim.manager.settle();
    assert.equal(contents(sim, 'gone'), []);
    assert.equal(contents(sim, 'default'), ['configmaps/kept', 'serviceaccounts/default'], 'the serviceaccount controller\'s account stays');
  } finally {
    await sim.stop();
  }
});

test.run();
