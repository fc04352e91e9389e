import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { runtimeContract } from './runtime-contract.js';

runtimeContract('FakeRuntime', async () => {
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/sleep', 'fake/exit3', 'fake/exit0', 'fake/print', 'fake/hog'] });
  runtime.setBehaviour('fake/sleep', {
    exec: (command) => (command.join(' ') === 'report' ? { exitCode: 3, stdout: 'out\n', stderr: 'err\n' } : { exitCode: 127, stdout: '', stderr: 'not found\n' }),
  });
  runtime.setBehaviour('fake/exit3', { exitAfterMs: 30, exitCode: 3 });
  runtime.setBehaviour('fake/exit0', { exitAfterMs: 30, exitCode: 0 });
  runtime.setBehaviour('fake/print', { output: ['one', 'two', 'three'] });
  runtime.setBehaviour('fake/hog', { exitAfterMs: 30, oom: true });
  return {
    runtime,
    labels: { 'test.run': 'fake' },
    sandbox: { image: 'fake/pause' },
    programs: {
      sleep: () => ({ image: 'fake/sleep' }),
      exit: (code) => {
        if (code !== 0 && code !== 3) throw new Error(`the fake harness scripts exit codes 0 and 3, not ${code}`);
        return { image: `fake/exit${code}` };
      },
      print: () => ({ image: 'fake/print' }),
      memoryHog: () => ({ image: 'fake/hog' }),
    },
    execCommand: ['report'],
    volume: async (name) => {
      const v = runtime.volumes.get(name);
      return v && { driver: v.Driver, options: v.DriverOpts };
    },
    removeVolume: async (name) => { runtime.volumes.delete(name); },
    cleanup: async () => {
      for (const c of await runtime.listContainers({})) await runtime.removeContainer(c.id);
    },
  };
});
