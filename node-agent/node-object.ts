// The Node object an agent registers and reports: the hardware inventory (labels, capacity, allocatable, GPUs,
// board facts, nodeInfo) plus what only the agent knows (its endpoint, its readiness, when it last beat).
import type { NodeInventory } from '../hardware/inventory.js';
import type { NodeObject } from './api-client.js';

export const AGENT_VERSION = 'flotilla-0.1.0';

export interface NodeObjectInputs {
  nodeName: string;
  inventory: NodeInventory;
  /** InternalIP the servers use to reach this agent's endpoint. */
  address: string;
  /** Port of the agent endpoint (Node.status.daemonEndpoints.kubeletEndpoint.Port). */
  port: number;
  containerRuntimeVersion: string;
  /** When the agent became ready (Ready condition's lastTransitionTime). */
  readySince: Date;
}

export function buildNodeObject(i: NodeObjectInputs, now = new Date()): NodeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: i.nodeName, labels: { ...i.inventory.labels } },
    spec: {},
    status: {
      capacity: { ...i.inventory.capacity },
      allocatable: { ...i.inventory.allocatable },
      conditions: [{
        type: 'Ready', status: 'True', reason: 'AgentReady', message: 'flotilla agent is posting ready status',
        lastHeartbeatTime: now.toISOString(), lastTransitionTime: i.readySince.toISOString(),
      }],
      addresses: [{ type: 'InternalIP', address: i.address }, { type: 'Hostname', address: i.nodeName }],
      daemonEndpoints: { kubeletEndpoint: { Port: i.port } },
      nodeInfo: { ...i.inventory.nodeInfo, kubeletVersion: AGENT_VERSION, containerRuntimeVersion: i.containerRuntimeVersion },
      gpus: i.inventory.gpus.map((g) => ({ ...g })),
      hardware: { ...i.inventory.hardware },
    },
  };
}

/** The machine's hostname as a node name: lowercased, runs of other characters turned into '-', trimmed. */
export function nodeNameFromHostname(hostname: string): string {
  const name = hostname.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '').slice(0, 253);
  if (name === '') throw new Error(`hostname "${hostname}" gives no usable node name; pass --name`);
  return name;
}
