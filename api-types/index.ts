// The object model shared by the server, the agent, the scheduler and the CLI.
export * from './meta.js';
export * from './objects.js';
export * from './well-known.js';
export * from './gpu-model-pattern.js';
export * from './cron-schedule.js';
export * from './resources.js';
export * from './quantity.js';
export * from './names.js';
export * from './selector.js';
export * from './validate.js';
export * from './canonical.js';
export * from './pod-references.js';
export * from './network.js';
export * from './image-reference.js';
export * from './ingress.js';
export * from './table-columns.js';
