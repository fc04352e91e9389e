// A Flotilla server for lab scenarios: server/run.ts with mDNS on eth0 and the --join auto timings a test
// wants (the CLI's `server` command has no flags for them):
//   node lab-server.js --data DIR --listen HOST:PORT [--join auto|URL] [--token T] [--cluster-init]
//                      [--settle-ms MS] [--join-timeout-ms MS]
// Prints "ready <clusterId> <memberId>" once it serves; SIGTERM stops it and exits 0. A start-up failure is
// printed as "flotilla: <reason>" and exits 1, as the CLI does.
import { run } from '../../server/run.js';
import { parseArgs, stringFlag, boolFlag } from '../../cli/args.js';

const args = parseArgs(process.argv.slice(2), [
  { name: 'data', kind: 'string' }, { name: 'listen', kind: 'string' }, { name: 'join', kind: 'string' }, { name: 'token', kind: 'string' },
  { name: 'cluster-init', kind: 'boolean' }, { name: 'settle-ms', kind: 'string' }, { name: 'join-timeout-ms', kind: 'string' },
]);
const dataDir = stringFlag(args, 'data');
const m = /^([\d.]+):(\d+)$/.exec(stringFlag(args, 'listen') ?? '');
if (!dataDir || !m) {
  console.error('usage: lab-server.js --data DIR --listen HOST:PORT [--join auto|URL] [--token T] [--cluster-init] [--settle-ms MS] [--join-timeout-ms MS]');
  process.exit(2);
}
const join = stringFlag(args, 'join');
const token = stringFlag(args, 'token');
const settle = stringFlag(args, 'settle-ms');
const joinTimeout = stringFlag(args, 'join-timeout-ms');
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
try {
  await run(stop.signal, {
    dataDir, host: m[1]!, port: Number(m[2]), interface: 'eth0',
    ...(join ? { join } : {}), ...(token ? { token } : {}), ...(boolFlag(args, 'cluster-init') ? { clusterInit: true } : {}),
    ...(settle ? { autoJoinSettleMs: Number(settle) } : {}), ...(joinTimeout ? { autoJoinTimeoutMs: Number(joinTimeout) } : {}),
  }, (info) => console.log(`ready ${info.clusterId} ${info.memberId}`));
} catch (err) {
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
