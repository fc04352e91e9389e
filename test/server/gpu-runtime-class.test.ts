// NVIDIA's own GPU pod example, applied verbatim with `flotilla apply` to a real server with a hollow GPU node:
// the RuntimeClass is served, the pod is admitted, scheduled onto the GPU node with a GPU, and runs there; the
// built-in PriorityClasses exist and `flotilla get` prints both kinds as kubectl does.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import pino from 'pino';
import { HollowFleet } from '../../node-agent/hollow.js';
import { LABEL_POD } from '../../node-agent/runtime/types.js';
import { RealServer } from '../agent/real-server.js';
import { eventually } from '../support/eventually.js';
import { runCli } from '../support/server-process.js';

// From the NVIDIA GPU Operator documentation ("Running a sample GPU application"), with its RuntimeClass.
const NVIDIA_EXAMPLE = `apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: nvidia
handler: nvidia
---
apiVersion: v1
kind: Pod
metadata:
  name: gpu-pod
spec:
  restartPolicy: Never
  runtimeClassName: nvidia
  containers:
    - name: cuda-container
      image: nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0
      resources:
        limits:
          nvidia.com/gpu: 1 # requesting 1 GPU
  tolerations:
  - key: nvidia.com/gpu
    operator: Exists
    effect: NoSchedule
`;

const srv = new RealServer();
const fleets: HollowFleet[] = [];
const env = () => ({ ...srv.server.cliEnv, HOME: join(srv.dir, 'home') });

/** Starts `prefix`-0 as a hollow node with `gpus` GPUs. */
function hollowNode(prefix: string, gpus: number): HollowFleet {
  const fleet = new HollowFleet({
    server: srv.server.url, token: srv.server.token, ca: srv.server.ca, dataDir: join(srv.dir, prefix), count: 1, prefix, gpus,
    log: pino({ level: 'silent' }), tuning: { heartbeatSeconds: 0.3, retrySeconds: 0.1, retryMaxSeconds: 0.5 },
  });
  fleets.push(fleet);
  fleet.start();
  return fleet;
}

test.before(async () => {
  await srv.start();
  // A CPU-only node beside the GPU node, so the placement is the scheduler's GPU choice.
  hollowNode('cpu', 0);
  hollowNode('gpu', 2);
  await eventually('both hollow nodes Ready', async () => {
    const list = await srv.client.request<{ items: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }> }>('GET', '/api/v1/nodes');
    return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 2;
  });
});
test.after(async () => {
  await Promise.all(fleets.map((f) => f.stopAll()));
  await srv.close();
});

test("NVIDIA's GPU pod example is accepted, scheduled onto the GPU node with one GPU, and runs", async () => {
  const applied = runCli(['apply', '-f', '-'], env(), NVIDIA_EXAMPLE);
  assert.is(applied.code, 0, applied.stderr);
  const pod = await eventually('gpu-pod Running', async () => {
    const p = await srv.client.request<{ spec: { nodeName?: string }; metadata: { annotations?: Record<string, string> }; status?: { phase?: string } }>('GET', '/api/v1/namespaces/default/pods/gpu-pod');
    return p.status?.phase === 'Running' ? p : undefined;
  });
  assert.is(pod.spec.nodeName, 'gpu-0');
  assert.match(pod.metadata.annotations?.['flotilla.io/assigned-gpus'] ?? '', /^GPU-hollow-gpu-0-[01]$/);
  assert.is(pod.metadata.annotations?.['flotilla.io/runtime-handler'], 'nvidia');
  assert.is((await fleets[1]!.runtime('gpu-0').listContainers({ [LABEL_POD]: 'gpu-pod' })).length, 2, 'sandbox and the CUDA container');
  const rc = runCli(['get', 'runtimeclasses'], env());
  assert.is(rc.code, 0, rc.stderr);
  assert.match(rc.stdout, /^NAME\s+HANDLER\s+AGE\nnvidia\s+nvidia\s+\S+\n$/);
});

test('the built-in PriorityClasses exist, as in Kubernetes', async () => {
  const pc = await eventually('system PriorityClasses', () => {
    const r = runCli(['get', 'priorityclasses'], env());
    return r.code === 0 && r.stdout.includes('system-cluster-critical') ? r.stdout : undefined;
  });
  assert.match(pc, /system-cluster-critical\s+2000000000\s+false\s/);
  assert.match(pc, /system-node-critical\s+2000001000\s+false\s/);
});

test.run();
