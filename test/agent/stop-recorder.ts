import type { ContainerRuntime } from '../../node-agent/runtime/types.js';
import { LABEL_CONTAINER, LABEL_POD, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';

/** One stop of an app container that was running: its pod, the grace period given, how the container ended. */
export interface RecordedStop { pod: string; graceSeconds: number; exitCode: number | null }

/**
 * Wraps `runtime.stopContainer` (any ContainerRuntime: the Docker and fake suites check the same thing) so that
 * every stop of a running app container is recorded in the returned list.
 */
export function recordStops(runtime: ContainerRuntime): RecordedStop[] {
  const stops: RecordedStop[] = [];
  const stop = runtime.stopContainer.bind(runtime);
  runtime.stopContainer = async (id: string, graceSeconds: number) => {
    const before = await runtime.inspectContainer(id);
    await stop(id, graceSeconds);
    if (before.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME && before.state === 'running') {
      stops.push({ pod: before.labels[LABEL_POD] ?? '', graceSeconds, exitCode: (await runtime.inspectContainer(id)).exitCode });
    }
  };
  return stops;
}
