// `flotilla server` over plain HTTP, for the benchmarks that measure what TLS costs (bench/api-storm.ts,
// bench/store.ts) and nothing else: server/run.ts with ServerConfig.transport 'http-for-benchmarks', which no
// CLI flag reaches. ServerProcess spawns it for transport 'http-for-benchmarks'.
//   node plain-http-server.js server --data DIR --listen HOST:PORT [--join URL --token T] [--snapshot-every N]
// Prints the CLI's "listening on URL (data in ...; cluster ID, member ID)" line once ready; SIGTERM stops it.
import { run } from '../../server/run.js';
import { parseArgs, stringFlag } from '../../cli/args.js';

const args = parseArgs(process.argv.slice(3), [
  { name: 'data', kind: 'string' }, { name: 'listen', kind: 'string' }, { name: 'join', kind: 'string' }, { name: 'token', kind: 'string' }, { name: 'snapshot-every', kind: 'string' },
]);
const dataDir = stringFlag(args, 'data');
const m = /^([\d.]+):(\d+)$/.exec(stringFlag(args, 'listen') ?? '');
if (process.argv[2] !== 'server' || !dataDir || !m) {
  console.error('usage: plain-http-server.js server --data DIR --listen HOST:PORT [--join URL --token T] [--snapshot-every N]');
  process.exit(2);
}
const join = stringFlag(args, 'join');
const token = stringFlag(args, 'token');
const snapshotEvery = stringFlag(args, 'snapshot-every');
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
process.on('SIGINT', () => stop.abort());
try {
  await run(stop.signal, {
    dataDir, host: m[1]!, port: Number(m[2]), mdns: false, transport: 'http-for-benchmarks',
    ...(join ? { join } : {}), ...(token ? { token } : {}), ...(snapshotEvery ? { snapshotEvery: Number(snapshotEvery) } : {}),
  }, (info) => console.log(`listening on ${info.url} (data in ${dataDir}; cluster ${info.clusterId}, member ${info.memberId})`));
} catch (err) {
  console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
