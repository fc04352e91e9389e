// An agent's first step in lab scenarios: find verified servers by mDNS on eth0 with a token.
//   node lab-locate.js TOKEN WAIT_MS
// Prints "servers <url,url,...>" after WAIT_MS (or as soon as `EXPECT` servers, the third argument, are verified)
// and exits 0, or prints the locator's refusal and exits 1.
import { createMdnsDiscovery } from '../../discovery/mdns.js';
import { locateServers } from '../../discovery/locate.js';
import { eventually } from '../support/eventually.js';

const [token, waitText, expectText] = process.argv.slice(2);
if (!token || !waitText) {
  console.error('usage: lab-locate.js TOKEN WAIT_MS [EXPECT]');
  process.exit(2);
}
const stop = new AbortController();
const locator = locateServers(token, { discovery: createMdnsDiscovery({ interface: 'eth0', maxQueryIntervalMs: 2000, addressPollMs: 300 }) }, stop.signal);
const expect = Number(expectText ?? '1');
const deadline = Date.now() + Number(waitText);
try {
  await locator.waitForServer(Number(waitText));
  // By the deadline, whatever is verified is the answer: fewer than EXPECT is for the scenario to judge.
  await eventually(`${expect} verified servers`, () => locator.servers().length >= expect, { limitMs: Math.max(0, deadline - Date.now()), everyMs: 100 }).catch(() => undefined);
  console.log(`servers ${[...locator.servers()].sort().join(',')}`);
  process.exitCode = 0;
} catch (err) {
  console.log(`refused ${(err as Error).message}`);
  process.exitCode = 1;
}
stop.abort();
await locator.done;
