// A real server process and an agent on the real Docker engine (in this process), with a kubeconfig for the
// real kubectl (/usr/bin/kubectl), for the suites of kubectl's streams (exec, attach, cp, logs, watch) and of the
// stream protocols themselves.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { kubeconfigDocument } from '../../cli/kubeconfig.js';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { ownChild } from '../support/server-process.js';
import { RealServer } from '../agent/real-server.js';

export const KUBECTL = '/usr/bin/kubectl';
export const TESTBOX = 'flotilla/testbox:latest';

/** Throws a clear error where kubectl is missing: the kubectl suites exist to drive the real one. */
export function requireKubectl(): void {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: the kubectl stream suites drive the real kubectl v1.32`);
}

export interface KubectlRun { code: number | null; stdout: string; stderr: string }

export class StreamCluster {
  readonly srv = new RealServer();
  readonly runtime = new DockerRuntime();
  kubeconfig = '';
  #stopAgent: (() => Promise<void>) | undefined;

  constructor(readonly node: string) {}

  async start(): Promise<void> {
    await this.srv.start();
    const agent = this.srv.startAgent(this.node, this.runtime);
    this.#stopAgent = agent.stop;
    await agent.ready;
    this.kubeconfig = join(this.srv.dir, 'kubeconfig');
    writeFileSync(this.kubeconfig, toYaml(kubeconfigDocument({ clusterName: 'flotilla', server: this.srv.server.url, caPem: this.srv.server.ca, userName: 'admin', token: this.srv.server.token })), { mode: 0o600 });
  }

  async stop(): Promise<void> {
    await this.#stopAgent?.();
    for (const c of await this.runtime.listContainers({ [LABEL_NODE]: this.node })) await this.runtime.removeContainer(c.id);
    await this.srv.close();
  }

  /** Runs kubectl to its end (asynchronously: the agent serving it runs in this process), stdin from `input`. */
  /** The server's URL for `path` as a WebSocket URL, and what a WebSocket client connects to it with (the admin token, the CA). */
  webSocketTarget(path: string): { url: string; options: { ca: string; headers: Record<string, string> } } {
    return { url: `${this.srv.server.url.replace(/^https:/, 'wss:')}${path}`, options: { ca: this.srv.server.ca, headers: { authorization: `Bearer ${this.srv.server.token}` } } };
  }

  kubectl(args: string[], input?: string | Buffer): Promise<KubectlRun> {
    const child = this.spawnKubectl(args);
    child.stdin!.end(input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d; });
    child.stderr!.on('data', (d: Buffer) => { stderr += d; });
    return new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** A kubectl process the caller reads and ends (it dies with this process too). */
  spawnKubectl(args: string[]): ReturnType<typeof spawn> {
    return ownChild(spawn(KUBECTL, ['--kubeconfig', this.kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: this.srv.dir } }));
  }
}

/** A testbox pod bound to `node` running `script` in container "main" (and more containers when given). */
export function boxPod(name: string, node: string, script: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TESTBOX, command: ['/bin/sh', '-c', script] }, ...((extra.containers as unknown[]) ?? [])] },
  };
}
