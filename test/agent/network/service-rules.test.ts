// Scenario files (test/agent/testdata/service-rules/*.txt) for the Service data path's compilers: the plan
// (node-agent/network/service-plan.ts) written as nftables (nft-ruleset.ts) and as iptables-restore input
// (iptables-ruleset.ts), from Services and EndpointSlices validated and defaulted as the API stores them
// (test/support/datadriven.ts; FLOTILLA_REWRITE=1 rewrites the expectations). The kernel side of the same rules
// is test/agent/network/service-proxy.netns.test.ts.
//
// Commands:
//   service NS/NAME clusterIP=IP ports=P,P [type=T] [etp=Local] [itp=Local] [affinity=ClientIP[:SECONDS]]
//           [externalIPs=IP,IP] [lb=IP]          a Service (replaces one of that name); P is [NAME:]PORT[/PROTO][@NODEPORT]
//   slice NS/NAME service=SVC ports=P,P endpoints=E,E [addressType=IPv6]
//                                                an EndpointSlice; P is [NAME:]PORT[/PROTO]; E is IP[@NODE][+notready][+notserving][+terminating]
//   delete service|slice NS/NAME
//   node NAME                                    this node's name (default node-a; the cluster CIDR is 10.42.0.0/16)
//   nft [full]                                   the nftables table; without `full`, the fixed chains (hooks, checks, masquerade) are left out
//   iptables                                     the iptables-restore input on a machine with none of our chains yet
//   udp                                          the UDP flows whose conntrack entries a change can make stale
//   delta                                        the transaction a later sync sends (nft-applier.ts): from what the
//                                                previous `delta` left in force (at first an empty table) to now,
//                                                with one compiler for the whole file, as the agent keeps one, told
//                                                which Services changed since (as the service cache tells it); the
//                                                ruleset it compiles must be the one a compile of everything gives
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LABEL_SERVICE_NAME, parseCidr } from '../../../api-types/index.js';
import { compileIptables, restoreInput } from '../../../node-agent/network/iptables-ruleset.js';
import { NftApplier, NftApplyError, transaction } from '../../../node-agent/network/nft-applier.js';
import { RulesetCompiler, compileRuleset, rulesetText, rulesetUdpFlows, type CompiledRuleset } from '../../../node-agent/network/nft-ruleset.js';
import type { NodeFacts } from '../../../node-agent/network/service-plan.js';
import { scenarioTests } from '../../support/datadriven.js';
import { StaticServiceSource, serviceObject, sliceObject } from './service-objects.js';

/** The chains every ruleset has, whatever the Services: `nft` leaves them out. */
const FIXED_CHAINS = new Set(['nat-prerouting', 'nat-output', 'nat-postrouting', 'filter-input', 'filter-forward', 'filter-output', 'services',
  'service-endpoints-check', 'nodeport-endpoints-check', 'reject-chain', 'mark-for-masquerade', 'masquerading']);

function options(args: string[]): Map<string, string> {
  return new Map(args.map((a) => {
    const i = a.indexOf('=');
    if (i < 0) throw new Error(`"${a}" is not KEY=VALUE`);
    return [a.slice(0, i), a.slice(i + 1)];
  }));
}

function nsName(text: string | undefined): [string, string] {
  const [ns, name] = (text ?? '').split('/');
  if (!ns || !name) throw new Error(`"${text}" is not NAMESPACE/NAME`);
  return [ns, name];
}

function port(text: string): { name?: string; port: number; protocol: string; nodePort?: number } {
  const m = /^(?:([a-z][-a-z0-9]*):)?(\d+)(?:\/(TCP|UDP|SCTP))?(?:@(\d+))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not [NAME:]PORT[/PROTO][@NODEPORT]`);
  return { ...(m[1] ? { name: m[1] } : {}), port: Number(m[2]), protocol: m[3] ?? 'TCP', ...(m[4] ? { nodePort: Number(m[4]) } : {}) };
}

class RulesRunner {
  private readonly source = new StaticServiceSource();
  private facts: NodeFacts = { nodeName: 'node-a', clusterCIDR: parseCidr('10.42.0.0/16') };
  private readonly compiler = new RulesetCompiler();
  private inForce: CompiledRuleset = { services: new Map() };
  /** Keys of the Services changed since the last `delta`; undefined before the first. */
  private changed: Set<string> | undefined;

  private touch(key: string): void {
    this.changed?.add(key);
  }

  run(command: string): string {
    const [verb, ...args] = command.split(/\s+/);
    switch (verb) {
      case 'service': return this.service(args);
      case 'slice': return this.slice(args);
      case 'delete': {
        const [kind, key] = args;
        const k = nsName(key).join('/');
        if (!(kind === 'service' ? this.source.svcs : this.source.slices).has(k)) throw new Error(`no ${kind} ${key}`);
        if (kind === 'service') this.source.svcs.delete(k);
        else this.touch(`${nsName(key)[0]}/${this.source.slices.get(k)!.metadata.labels?.[LABEL_SERVICE_NAME]}`);
        if (kind === 'service') this.touch(k);
        else this.source.deleteSlice(k);
        return '';
      }
      case 'node': this.facts = { ...this.facts, nodeName: args[0]! }; this.changed = undefined; return '';
      case 'nft': {
        const text = rulesetText(compileRuleset(this.source, this.facts));
        return args[0] === 'full' ? text.trimEnd() : withoutFixedChains(text);
      }
      case 'iptables': return restoreInput(compileIptables(this.source, this.facts), { nat: new Set(), filter: new Set() }).trimEnd();
      case 'delta': {
        const changed = this.changed && new Map([...this.changed].map((k) => [k, this.source.svcs.get(k)]));
        const next = this.compiler.compile(this.source, this.facts, changed);
        assert.fixture(rulesetText(next), rulesetText(compileRuleset(this.source, this.facts)), 'the compile of the changed Services is the compile of all');
        this.changed = new Set();
        const sent = transaction(this.inForce, next);
        this.inForce = next;
        return sent.trimEnd() || '(nothing to send)';
      }
      case 'udp': return rulesetUdpFlows(compileRuleset(this.source, this.facts)).map((f) => `${f.ip ?? '<node>'}:${f.port} -> ${f.endpoint}`).join('\n');
      default: throw new Error(`unknown command "${verb}"`);
    }
  }

  private service(args: string[]): string {
    const [ns, name] = nsName(args[0]);
    const o = options(args.slice(1));
    const affinity = o.get('affinity')?.split(':');
    const spec: Record<string, unknown> = {
      clusterIP: o.get('clusterIP'),
      ...(o.has('type') ? { type: o.get('type') } : {}),
      ports: (o.get('ports') ?? '').split(',').map(port).map((p) => ({ ...p, targetPort: p.port })),
      ...(o.has('etp') ? { externalTrafficPolicy: o.get('etp') } : {}),
      ...(o.has('itp') ? { internalTrafficPolicy: o.get('itp') } : {}),
      ...(affinity ? { sessionAffinity: affinity[0], ...(affinity[1] ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: Number(affinity[1]) } } } : {}) } : {}),
      ...(o.has('externalIPs') ? { externalIPs: o.get('externalIPs')!.split(',') } : {}),
    };
    this.source.putService(serviceObject(ns, name, spec, o.has('lb') ? { loadBalancer: { ingress: [{ ip: o.get('lb') }] } } : undefined));
    this.touch(`${ns}/${name}`);
    return '';
  }

  private slice(args: string[]): string {
    const [ns, name] = nsName(args[0]);
    const o = options(args.slice(1));
    const endpoints = (o.get('endpoints') ?? '').split(',').filter(Boolean).map((e) => {
      const [addr, ...flags] = e.split('+');
      const [ip, nodeName] = addr!.split('@');
      return {
        ip: ip!, ...(nodeName ? { nodeName } : {}),
        ...(flags.includes('notready') ? { ready: false } : {}),
        ...(flags.includes('notserving') ? { serving: false } : {}),
        ...(flags.includes('terminating') ? { terminating: true } : {}),
      };
    });
    const was = this.source.slices.get(`${ns}/${name}`);
    if (was) this.touch(`${ns}/${was.metadata.labels?.[LABEL_SERVICE_NAME]}`);
    this.source.putSlice(sliceObject(ns, name, o.get('service') ?? '', (o.get('ports') ?? '').split(',').map(port), endpoints, o.get('addressType')));
    this.touch(`${ns}/${o.get('service') ?? ''}`);
    return '';
  }
}

function withoutFixedChains(text: string): string {
  return text.replace(/^\tchain (\S+) \{\n[\s\S]*?^\t\}\n/gm, (block, name: string) => (FIXED_CHAINS.has(name) ? '' : block)).trimEnd();
}

scenarioTests(test, 'test/agent/testdata/service-rules', () => new RulesRunner());

test('the same Services in another order give byte-identical rules', () => {
  const a = new StaticServiceSource();
  const b = new StaticServiceSource();
  const svcs = [1, 2, 3].map((i) => serviceObject('default', `s${i}`, { clusterIP: `10.43.0.${i}`, ports: [{ port: 80 }] }));
  const slices = [1, 2, 3].map((i) => sliceObject('default', `s${i}-x`, `s${i}`, [{ port: 8080 }], [{ ip: `10.42.0.${10 + i}` }, { ip: `10.42.0.${20 + i}` }]));
  for (const s of svcs) a.putService(s);
  for (const s of slices) a.putSlice(s);
  for (const s of [...svcs].reverse()) b.putService(s);
  for (const s of [...slices].reverse()) b.putSlice(s);
  const facts = { nodeName: 'n', clusterCIDR: parseCidr('10.42.0.0/16') };
  assert.is(rulesetText(compileRuleset(b, facts)), rulesetText(compileRuleset(a, facts)));
  assert.equal(compileIptables(b, facts), compileIptables(a, facts));
});

test('a difference nft -i gives no answer to goes to nft -f; one nft refuses makes the whole table go', async () => {
  const source = new StaticServiceSource();
  const facts = { nodeName: 'n', clusterCIDR: parseCidr('10.42.0.0/16') };
  const compiler = new RulesetCompiler();
  const toRun: string[] = [];
  let runCode = 0;
  const applier = new NftApplier(async (_cmd, _args, input) => { toRun.push(input ?? ''); return { code: runCode, stdout: '', stderr: '' }; },
    async () => ({ code: -1, stdout: '', stderr: 'nft -i exited' }));
  source.putService(serviceObject('default', 'a', { clusterIP: '10.43.0.1', ports: [{ port: 80 }] }));
  assert.ok(await applier.apply(compiler.compile(source, facts)));
  source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], [{ ip: '10.42.0.5' }]));
  assert.ok(await applier.apply(compiler.compile(source, facts)));
  assert.equal(toRun.map((t) => t.includes('delete table')), [true, false], 'the whole table, then the difference through nft -f');
  runCode = 1;
  source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], [{ ip: '10.42.0.6' }]));
  await applier.apply(compiler.compile(source, facts)).then(() => assert.unreachable('nft refused'), (err: Error) => assert.instance(err, NftApplyError));
  assert.equal(toRun.slice(2).map((t) => t.includes('delete table')), [false, true], 'the difference, then the whole table');
});

test.run();
