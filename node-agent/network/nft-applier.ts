// Puts a compiled ruleset (node-agent/network/nft-ruleset.ts) in the kernel, whole and at once: one `nft -f -`
// transaction that empties our table and writes the new one, so packets see the old ruleset or the new one,
// never a mix, and a ruleset the kernel refuses leaves the old one in force. An unchanged ruleset is not sent.
//
// The first sync of a process deletes and recreates the table (whatever an earlier run left). Later syncs send
// only the difference, still as one transaction: chains that changed are flushed and refilled, map elements
// deleted and added, chains and sets that went away deleted. The cost of a change is then the size of the change,
// not of the table, and the sessionAffinity sets keep their entries (clients stay pinned across syncs). Stale UDP conntrack
// entries (an endpoint gone behind a destination) are deleted after the switch, since UDP "connections" would
// otherwise keep going to the old endpoint for as long as the client keeps sending.
import { spawn } from 'node:child_process';
import { TABLE_FAMILY, TABLE_NAME, VERDICT_MAPS, type CompiledRuleset } from './nft-ruleset.js';
import { staleUdpFlows, type UdpFlow } from './service-plan.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with `input` on its stdin; never rejects for a non-zero exit (the caller reads `code`). */
export type RunCommand = (command: string, args: string[], input?: string) => Promise<CommandResult>;

/** Runs commands on this machine, or inside network namespace `netns` (`ip netns exec`, for tests and benchmarks). */
export function commandRunner(netns?: string): RunCommand {
  return (command, args, input) => new Promise((resolve, reject) => {
    const [cmd, argv] = netns ? ['ip', ['netns', 'exec', netns, command, ...args]] : [command, args];
    const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

export class NftApplyError extends Error {}

export class NftApplier {
  /** The ruleset in force, as this process last wrote it; undefined before the first sync (or after a failed one). */
  #applied: CompiledRuleset | undefined;
  /** #applied read back into its objects, for the next difference. */
  #appliedTable: ParsedTable | undefined;

  constructor(private readonly run: RunCommand) {}

  /** True when the kernel got a new ruleset, false when it was unchanged. Throws NftApplyError when nft refuses it. */
  async apply(next: CompiledRuleset): Promise<boolean> {
    const before = this.#applied;
    if (before?.text === next.text) return false;
    const nextTable = parseTable(next.text);
    const change = this.#appliedTable && delta(this.#appliedTable, nextTable);
    if (change) {
      const res = await this.run('nft', ['-f', '-'], change);
      // Our table may have been removed or changed behind our back: replace it whole.
      if (res.code !== 0) await this.#replace(next);
    } else {
      await this.#replace(next);
    }
    this.#applied = next;
    this.#appliedTable = nextTable;
    await clearConntrack(this.run, staleUdpFlows(before?.udpFlows ?? [], next.udpFlows));
    return true;
  }

  async #replace(next: CompiledRuleset): Promise<void> {
    const res = await this.run('nft', ['-f', '-'], `table ${TABLE_FAMILY} ${TABLE_NAME} {\n}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n${next.text}`);
    if (res.code !== 0) throw new NftApplyError(`nft refused the ruleset (the one in force stays): ${res.stderr.trim()}`);
  }
}

/**
 * Deletes the conntrack entries of UDP flows whose endpoint went away (the flows of both backends); "no such
 * entry" is fine (conntrack exits 1 when it deleted nothing).
 */
export async function clearConntrack(run: RunCommand, stale: UdpFlow[]): Promise<void> {
  for (const f of stale) {
    const args = ['-D', '-p', 'udp', ...(f.ip ? ['--orig-dst', f.ip] : []), '--orig-port-dst', String(f.port), '--reply-src', f.endpoint];
    const res = await run('conntrack', args).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
    if (res.code > 1 || res.code < 0) throw new NftApplyError(`conntrack ${args.join(' ')} failed: ${res.stderr.trim()}`);
  }
}

interface ParsedTable {
  /** Map name -> element key -> the element as written ("key : verdict"). */
  maps: Map<string, Map<string, string>>;
  /** Set name -> its declaration block. */
  sets: Map<string, string>;
  /** Chain name -> its base-chain declaration ("type ... policy ...;", empty for a regular chain) and rules. */
  chains: Map<string, { head: string; rules: string[] }>;
}

/** Reads back the table text nft-ruleset.ts writes (its layout only: one tab per level, one rule per line). */
function parseTable(text: string): ParsedTable {
  const parsed: ParsedTable = { maps: new Map(), sets: new Map(), chains: new Map() };
  for (const m of text.matchAll(/^\t(map|set|chain) (\S+) \{\n([\s\S]*?)^\t\}\n/gm)) {
    const [block, kind, name, body] = [m[0], m[1]!, m[2]!, m[3]!];
    const lines = body.split('\n').filter(Boolean).map((l) => l.trim());
    if (kind === 'set') parsed.sets.set(name, block);
    else if (kind === 'map') {
      parsed.maps.set(name, new Map(lines.filter((l) => !l.startsWith('type ') && l !== 'elements = {' && l !== '}')
        .map((l) => l.replace(/,$/, '')).map((e) => [e.slice(0, e.indexOf(' : ')), e])));
    } else {
      const head = lines[0]?.startsWith('type ') ? lines[0] : '';
      parsed.chains.set(name, { head, rules: head ? lines.slice(1) : lines });
    }
  }
  return parsed;
}

/**
 * One transaction from `before` (in force) to `after` that touches only what changed: new chains and sets
 * added, changed chains flushed and refilled, map elements deleted and added, then chains and sets that went
 * away deleted (nothing refers to them any more by then). Undefined when the fixed part changed (a base chain or
 * a map's type): the table is then replaced whole.
 */
function delta(a: ParsedTable, b: ParsedTable): string | undefined {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const out: string[] = [];
  const last: string[] = [];
  // A set whose declaration changed (another timeout) is made anew: the chains that use it are refilled.
  const remade = [...b.sets.keys()].filter((n) => a.sets.has(n) && a.sets.get(n) !== b.sets.get(n));
  const same = (old: { rules: string[] } | undefined, now: { rules: string[] }): boolean =>
    old !== undefined && old.rules.join('\n') === now.rules.join('\n') && !remade.some((set) => now.rules.some((r) => r.includes(`@${set} `)));
  for (const [name, chain] of b.chains) {
    const old = a.chains.get(name);
    if (old ? old.head !== chain.head : chain.head !== '') return undefined;
    if (!same(old, chain)) out.push(old ? `flush chain ${t} ${name}` : `add chain ${t} ${name}`);
  }
  for (const name of a.chains.keys()) {
    if (b.chains.has(name)) continue;
    if (a.chains.get(name)!.head) return undefined;
    out.push(`flush chain ${t} ${name}`);
    last.push(`delete chain ${t} ${name}`);
  }
  for (const name of remade) out.push(`delete set ${t} ${name}`);
  for (const [name, block] of b.sets) {
    if (a.sets.get(name) !== block) out.push(`add set ${t} ${name} { ${block.split('\n').slice(1, -2).map((l) => l.trim()).join('; ')}; }`);
  }
  for (const [name, chain] of b.chains) {
    if (!same(a.chains.get(name), chain)) for (const r of chain.rules) out.push(`add rule ${t} ${name} ${r}`);
  }
  for (const name of VERDICT_MAPS) {
    const was = a.maps.get(name) ?? new Map<string, string>();
    const now = b.maps.get(name) ?? new Map<string, string>();
    const gone = [...was].filter(([k, e]) => now.get(k) !== e).map(([k]) => k);
    const added = [...now].filter(([k, e]) => was.get(k) !== e).map(([, e]) => e);
    if (gone.length) out.push(`delete element ${t} ${name} { ${gone.join(', ')} }`);
    if (added.length) out.push(`add element ${t} ${name} { ${added.join(', ')} }`);
  }
  for (const name of a.sets.keys()) if (!b.sets.has(name)) last.push(`delete set ${t} ${name}`);
  return `${[...out, ...last].join('\n')}\n`;
}
