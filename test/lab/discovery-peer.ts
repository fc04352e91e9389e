// A process for lab scenarios: advertises one Flotilla process, or browses, over mDNS on eth0.
//   node discovery-peer.js advertise '<Advertisement JSON>' TTL_SECONDS
//   node discovery-peer.js browse '<PeerFilter JSON>' TTL_SECONDS
// Prints "ready" once started; a browser prints "peers <cluster/role/id,...> <addresses JSON>" on each change.
// SIGTERM or SIGINT withdraws (goodbye) and exits 0.
import { createMdnsDiscovery } from '../../discovery/mdns.js';

const [mode, json, ttl] = process.argv.slice(2);
if ((mode !== 'advertise' && mode !== 'browse') || json === undefined || ttl === undefined) {
  console.error('usage: discovery-peer.js advertise|browse JSON TTL_SECONDS');
  process.exit(2);
}
const discovery = createMdnsDiscovery({
  interface: 'eth0', ttlSeconds: Number(ttl), maxQueryIntervalMs: 2000, addressPollMs: 300,
  onWarning: (m) => console.error(`warning ${m}`),
});
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
const running = mode === 'advertise'
  ? discovery.advertise(JSON.parse(json), stop.signal)
  : discovery.browse(JSON.parse(json), (peers) => {
    console.log(`peers ${peers.map((p) => `${p.clusterId}/${p.role}/${p.id}`).join(',')} ${JSON.stringify(peers.map((p) => p.addresses))}`);
  }, stop.signal);
console.log('ready');
await running;
