// The real kubectl (on PATH) against a real Flotilla server over HTTPS: a server (server/run.ts) in this
// process and a kubeconfig from `flotilla kubeconfig`'s document, in a scratch HOME so that kubectl's discovery
// cache starts empty. kubectl runs as a child process without blocking the server's event loop.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { kubeconfigDocument } from '../../cli/kubeconfig.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';

export interface KubectlResult { code: number; stdout: string; stderr: string }

export interface KubectlCluster {
  server: InProcessServer;
  dir: string;
  kubeconfig: string;
  /** Runs kubectl with `args` (and `stdin` on its standard input, `extraEnv` in its environment); never rejects on a non-zero exit. */
  kubectl(args: readonly string[], stdin?: string, extraEnv?: Record<string, string>): Promise<KubectlResult>;
  stop(): Promise<void>;
}

/** Runs `command` without blocking this process (whose event loop serves the in-process server); never rejects on a non-zero exit. */
export function runAsync(command: string, args: readonly string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<KubectlResult> {
  return new Promise<KubectlResult>((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

export async function startKubectlCluster(): Promise<KubectlCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-kubectl-'));
  let server: InProcessServer | undefined;
  try {
    server = await startInProcessServer(join(dir, 'data'));
    const info = server.info;
    if (info.adminToken === undefined) throw new Error('the new cluster has no admin token');
    const home = join(dir, 'home');
    mkdirSync(home);
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, toYaml(kubeconfigDocument({ clusterName: 'flotilla-test', server: info.url, caPem: info.caPem, userName: 'admin', token: info.adminToken })), { mode: 0o600 });
    const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig, KUBECTL_INTERACTIVE_DELETE: 'false' };
    const kubectl = (args: readonly string[], stdin?: string, extraEnv: Record<string, string> = {}) => runAsync('kubectl', args, { ...env, ...extraEnv }, stdin);
    const running = server;
    return { server, dir, kubeconfig, kubectl, stop: async () => { await running.stop(); rmSync(dir, { recursive: true, force: true }); } };
  } catch (err) {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
