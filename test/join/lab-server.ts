// A Flotilla server for lab scenarios (server/run.ts with mDNS on eth0), until the CLI's `server` command
// carries --join auto, --interface and --no-mdns:
//   node lab-server.js DATA_DIR HOST:PORT JOIN SECRET SETTLE_MS
// JOIN is "auto", a member URL, or "-" (bootstrap). Prints "ready <clusterId> <memberId>" once it serves;
// SIGTERM stops it and exits 0.
import { run } from '../../server/run.js';

const [dataDir, listen, join, secret, settle] = process.argv.slice(2);
const m = /^([\d.]+):(\d+)$/.exec(listen ?? '');
if (!dataDir || !m || !join || !secret || !settle) {
  console.error('usage: lab-server.js DATA_DIR HOST:PORT auto|URL|- SECRET SETTLE_MS');
  process.exit(2);
}
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
await run(stop.signal, {
  dataDir, host: m[1]!, port: Number(m[2]), token: secret, interface: 'eth0', autoJoinSettleMs: Number(settle),
  ...(join !== '-' ? { join } : {}),
}, (info) => console.log(`ready ${info.clusterId} ${info.memberId}`));
