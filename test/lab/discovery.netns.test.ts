// Three hosts on one lab switch. h1 advertises the server of cluster alpha, h2 an alpha agent, h3 a server of
// cluster beta and browses for alpha: the browser must see exactly the alpha peers across the bridge, lose the
// agent when its process is killed without a goodbye (TTL expiry), lose the server while h1's cable is out,
// and find it again once the cable is back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLab, type Lab, type LabProcess } from './lab.js';
import type { Advertisement } from '../../discovery/advertisement.js';

const PEER_SCRIPT = new URL('./discovery-peer.js', import.meta.url).pathname;
const TTL_SECONDS = '3';
// Bounds, not targets: expiry takes TTL_SECONDS, a healed link is noticed within the 300 ms address poll.
const WAIT_MS = 10_000;

function advertisement(clusterId: string, role: 'server' | 'agent', id: string, address: string): Advertisement {
  return { clusterId, role, id, apiUrl: `https://${address}:6443`, fingerprint: `sha256:${clusterId}-ca-0123456789abcdef` };
}

function peer(lab: Lab, host: number, mode: 'advertise' | 'browse', payload: object): LabProcess {
  return lab.spawn(host, process.execPath, [PEER_SCRIPT, mode, JSON.stringify(payload), TTL_SECONDS]);
}

/** Waits until the browser's latest report lists exactly `ids` (the last line of its output). */
function reported(browser: LabProcess, ids: string[]): Promise<string> {
  const escaped = ids.join(',').replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return browser.waitFor(new RegExp(`(^|\\n)peers ${escaped} [^\\n]*\\n$`), WAIT_MS);
}

let lab: Lab | undefined;

test.after(async () => { await lab?.destroy(); });

test('a browser sees the peers of its cluster only, loses them when they die or are cut off, finds them after heal', async () => {
  lab = await createLab({ hosts: 3, prefix: 'fl-lab-disc' });
  const [h1, h2, h3] = [lab.host(1), lab.host(2), lab.host(3)];
  const server = peer(lab, 1, 'advertise', advertisement('alpha', 'server', 's1', h1.address));
  const agent = peer(lab, 2, 'advertise', advertisement('alpha', 'agent', 'n2', h2.address));
  peer(lab, 3, 'advertise', advertisement('beta', 'server', 's3', h3.address));
  const browser = peer(lab, 3, 'browse', { clusterId: 'alpha' });
  await Promise.all([server, agent, browser].map((p) => p.waitFor(/^ready$/m, WAIT_MS)));

  const both = await reported(browser, ['alpha/agent/n2', 'alpha/server/s1']);
  assert.match(both, `[["${h2.address}"],["${h1.address}"]]`, 'addresses come from the other hosts, across the bridge');

  agent.kill('SIGKILL');
  await reported(browser, ['alpha/server/s1']);

  lab.cut(1);
  await reported(browser, []);
  lab.heal(1);
  await reported(browser, ['alpha/server/s1']);

  assert.not.match(browser.output(), /beta/, 'a peer of another cluster was reported');
  assert.not.match(browser.output() + server.output(), /warning/);
});

test.run();
