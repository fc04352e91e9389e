// One server (server/run.ts) in this process, on loopback with a free port and no mDNS: for suites that need the
// server's objects (ServerInfo, its data dir) rather than a child process. stop() aborts it and waits until it
// has closed; a start-up error rejects start.
import { run, type ServerConfig, type ServerInfo } from '../../server/run.js';

export interface InProcessServer { info: ServerInfo; stop(): Promise<void> }

/** `config` adds to (or overrides) the loopback defaults. */
export async function startInProcessServer(dataDir: string, config: Partial<ServerConfig> = {}): Promise<InProcessServer> {
  const ac = new AbortController();
  let running: Promise<void> = Promise.resolve();
  const info = await new Promise<ServerInfo>((resolve, reject) => {
    running = run(ac.signal, { dataDir, host: '127.0.0.1', port: 0, mdns: false, tickMs: 20, ...config }, resolve);
    running.catch(reject);
  });
  return { info, stop: async () => { ac.abort(); await running; } };
}
