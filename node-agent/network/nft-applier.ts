// Puts a compiled ruleset (node-agent/network/nft-ruleset.ts) in the kernel, whole and at once: one `nft -f -`
// transaction that empties our table and writes the new one, so packets see the old ruleset or the new one,
// never a mix, and a ruleset the kernel refuses leaves the old one in force. An unchanged ruleset is not sent.
//
// The first sync of a process deletes and recreates the table (whatever an earlier run left). Later syncs flush
// the table's rules and verdict maps instead, delete only the chains and sets that went away, and redeclare the
// rest: the sessionAffinity sets keep their entries (clients stay pinned across syncs). Stale UDP conntrack
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

  constructor(private readonly run: RunCommand) {}

  /** True when the kernel got a new ruleset, false when it was unchanged. Throws NftApplyError when nft refuses it. */
  async apply(next: CompiledRuleset): Promise<boolean> {
    const before = this.#applied;
    if (before?.text === next.text) return false;
    if (before) {
      const res = await this.run('nft', ['-f', '-'], incremental(before.text, next.text));
      // Our table may have been removed or changed behind our back: replace it whole.
      if (res.code !== 0) await this.#replace(next);
    } else {
      await this.#replace(next);
    }
    this.#applied = next;
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

const objectNames = (text: string, kind: 'chain' | 'set'): Map<string, string> => {
  const out = new Map<string, string>();
  const re = new RegExp(`^\\t${kind} (\\S+) \\{\\n[\\s\\S]*?^\\t\\}\\n`, 'gm');
  for (const m of text.matchAll(re)) out.set(m[1]!, m[0]);
  return out;
};

/**
 * The transaction from `before` (in force) to `after`: rules and map elements flushed, chains that went away and
 * sets that went away or changed deleted, then the new table (chains and sets that stay are redeclared as they are).
 */
function incremental(before: string, after: string): string {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const lines = [`flush table ${t}`, ...VERDICT_MAPS.map((m) => `flush map ${t} ${m}`)];
  const chainsAfter = objectNames(after, 'chain');
  for (const name of objectNames(before, 'chain').keys()) if (!chainsAfter.has(name)) lines.push(`delete chain ${t} ${name}`);
  const setsAfter = objectNames(after, 'set');
  for (const [name, block] of objectNames(before, 'set')) if (setsAfter.get(name) !== block) lines.push(`delete set ${t} ${name}`);
  return `${lines.join('\n')}\n${after}`;
}
