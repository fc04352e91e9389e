// Scenario files (test/raft/testdata/*.txt), in the style of etcd's datadriven tests: each block is a
// command line, a line "----", then the expected output, ended by a blank line. The runner replays every
// file on a TestNetwork and compares (test/support/datadriven.ts; FLOTILLA_REWRITE=1 rewrites them).
//
// Commands:
//   cluster voters=1,2,3 [spares=4] [prevote=false] [checkquorum=false]
//   campaign ID | propose ID DATA | tick ID N | tick-all N | isolate ID | heal | restart ID
//   read-index ID CONTEXT | transfer ID TO | conf ID addNode|addLearner|removeNode NODE
//   snapshot ID        (snapshot at the applied index, then compact the log up to it)
//   trace on|off       (print the messages each later command caused)
//   status             (one line per member) | applied ID | reads ID
import { test } from 'uvu';
import type { Message } from '../../server/raft/types.js';
import { scenarioTests } from '../support/datadriven.js';
import { TestNetwork, bytes, text } from './network.js';

function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} term=${m.term}`];
  if (m.type === 'MsgApp') parts.push(`index=${m.index} logTerm=${m.logTerm} entries=[${m.entries.map((e) => `${e.term}/${e.index}`).join(' ')}] commit=${m.commit}`);
  if (m.type === 'MsgAppResp') parts.push(`index=${m.index}`);
  if (m.type === 'MsgVote' || m.type === 'MsgPreVote') parts.push(`index=${m.index} logTerm=${m.logTerm}`);
  if (m.type === 'MsgHeartbeat') parts.push(`commit=${m.commit}`);
  if (m.type === 'MsgSnap') parts.push(`snapshot=${m.snapshot?.meta.term}/${m.snapshot?.meta.index}`);
  if (m.reject) parts.push(`reject hint=${m.rejectHint}`);
  if (m.context !== undefined) parts.push(`ctx=${m.context}`);
  return parts.join(' ');
}

class ScenarioRunner {
  private net: TestNetwork | undefined;
  private trace = false;

  private get network(): TestNetwork {
    if (!this.net) throw new Error('no cluster: start with "cluster voters=..."');
    return this.net;
  }

  run(command: string): string {
    const [verb, ...args] = command.trim().split(/\s+/);
    const num = (i: number): number => {
      const n = Number(args[i]);
      if (!Number.isInteger(n)) throw new Error(`${verb}: argument ${i + 1} must be an integer, got ${JSON.stringify(args[i])}`);
      return n;
    };
    const before = this.net?.delivered.length ?? 0;
    let out: string[] = [];
    try {
      out = this.execute(verb ?? '', args, num);
    } catch (err) {
      out = [`error: ${(err as Error).message}`];
    }
    if (this.trace && this.net) out = [...this.net.delivered.slice(before).map(formatMessage), ...out];
    return out.join('\n');
  }

  private execute(verb: string, args: string[], num: (i: number) => number): string[] {
    switch (verb) {
      case 'cluster': {
        const opts = Object.fromEntries(args.map((a) => a.split('=') as [string, string]));
        const ids = (s: string | undefined): number[] => (s ? s.split(',').map(Number) : []);
        this.net = new TestNetwork(ids(opts.voters), {
          spares: ids(opts.spares), preVote: opts.prevote !== 'false', checkQuorum: opts.checkquorum !== 'false',
        });
        return [];
      }
      case 'trace':
        this.trace = args[0] === 'on';
        return [];
      case 'campaign': this.network.campaign(num(0)); return [];
      case 'propose': this.network.propose(num(0), args[1] ?? ''); return [];
      case 'tick': this.network.tick(num(0), num(1)); return [];
      case 'tick-all': this.network.tickAll(num(0)); return [];
      case 'isolate': this.network.isolate(num(0)); return [];
      case 'heal': this.network.heal(); return [];
      case 'restart': this.network.restart(num(0)); this.network.settle(); return [];
      case 'read-index': this.network.node(num(0)).readIndex(args[1] ?? ''); this.network.settle(); return [];
      case 'transfer': this.network.node(num(0)).transferLeader(num(1)); this.network.settle(); return [];
      case 'conf': {
        const type = args[1];
        if (type !== 'addNode' && type !== 'addLearner' && type !== 'removeNode') throw new Error(`conf: unknown change ${type}`);
        this.network.node(num(0)).proposeConfChange({ type, nodeId: num(2) });
        this.network.settle();
        return [];
      }
      case 'snapshot': {
        const p = this.network.peer(num(0));
        const applied = p.node.raft.log.applied;
        p.storage.createSnapshot(applied, p.node.status().confState, bytes(`state@${applied}`));
        p.storage.compact(applied);
        return [`snapshot ${p.storage.snapshot().meta.term}/${applied}, first index ${p.storage.firstIndex()}`];
      }
      case 'status':
        return [...this.network.peers.values()].map(({ id, node }) => {
          const s = node.status();
          const learners = s.confState.learners.length > 0 ? ` learners=${s.confState.learners.join(',')}` : '';
          return `${id}: ${s.role} term=${s.term} lead=${s.lead} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} voters=${s.confState.voters.join(',')}${learners}`;
        });
      case 'applied':
        return [this.network.peer(num(0)).applied.map((e) => (e.type === 'confChange' ? `conf:${text(e)}` : text(e) || '-')).join(' ')];
      case 'reads':
        return this.network.peer(num(0)).readStates.map((r) => `${r.context}@${r.index}`);
      default:
        throw new Error(`unknown command ${JSON.stringify(verb)}`);
    }
  }
}

scenarioTests(test, 'test/raft/testdata', () => new ScenarioRunner());

test.run();
