import Docker from 'dockerode';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { PAUSE_IMAGE } from '../../node-agent/runtime/pause-image.js';
import { runtimeContract } from './runtime-contract.js';

const TESTBOX = 'flotilla/testbox:latest';
const sh = (script: string) => ({ image: TESTBOX, entrypoint: ['/bin/sh', '-c', script] });

runtimeContract('DockerRuntime', async () => {
  const docker = new Docker();
  const runtime = new DockerRuntime({ docker });
  const labels = { 'io.flotilla.test': `runtime-contract-${process.pid}` };
  // The sandbox is the self-made pause image: ensuring it imports it when missing.
  await runtime.ensureImage(PAUSE_IMAGE);
  return {
    runtime,
    labels,
    sandbox: { image: PAUSE_IMAGE },
    programs: {
      sleep: () => sh('exec sleep 600'),
      exit: (code) => sh(`sleep 0.2; exit ${code}`),
      print: (lines) => sh(`${lines.map((l) => `echo ${l}`).join('; ')}; exec sleep 600`),
      memoryHog: () => sh('x=0123456789abcdef; while :; do x=$x$x; done'),
    },
    execCommand: ['/bin/sh', '-c', 'echo out; echo err >&2; exit 3'],
    volume: async (name) => {
      const v = await docker.getVolume(name).inspect().catch((err: { statusCode?: number }) => { if (err.statusCode === 404) return undefined; throw err; });
      return v && { driver: v.Driver, options: v.Options ?? {} };
    },
    removeVolume: async (name) => {
      await docker.getVolume(name).remove().catch((err: { statusCode?: number }) => { if (err.statusCode !== 404) throw err; });
    },
    cleanup: async () => {
      for (const c of await runtime.listContainers(labels)) await runtime.removeContainer(c.id);
    },
  };
});
