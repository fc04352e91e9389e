// Puts a compiled ruleset (node-agent/network/nft-ruleset.ts) in the kernel, whole and at once: one transaction
// (`nft -f -` for a whole table, one line to a long-lived `nft -i` for a difference, see NftShell), so packets see
// the old ruleset or the new one, never a mix, and a ruleset the kernel refuses leaves the old one in force. An
// unchanged ruleset is not sent.
//
// The first sync of a process deletes and recreates the table (whatever an earlier run left). Later syncs send
// only the difference, still as one transaction, computed from the applied ruleset kept as objects (no text is
// parsed): only the Services the compiler was told changed are compared (without that, those whose rules are not
// the same object as last time), so the cost of a change is the size of the change, not of the table, and the
// sessionAffinity sets keep their entries (clients stay pinned across syncs). If nft refuses the difference (our
// table changed behind our back), the table is replaced whole. Stale UDP conntrack entries (an endpoint gone
// behind a destination) are deleted after the switch, since UDP "connections" would otherwise keep going to the
// old endpoint for as long as the client keeps sending.
//
// Where the time of one change goes (5,000 Services x 3 endpoints; kernel 6.18, nft 1.0.6; CPU times, as the wall
// time swings with the machine's load; bench/nft-sync.ts):
// - the compile and the difference here: ~1 ms of CPU together, the changed Service only (~25 ms with a walk over
//   every Service's key in both);
// - nft's start, ~2 ms of CPU, and its exit: closing its netlink socket waits for the kernel to release what the
//   commit replaced (flushed rules, deleted elements: an RCU grace period, 10-20 ms of wall time that no CPU is
//   spent on). The long-lived `nft -i` pays neither;
// - nft's cache: before it applies a command nft lists what the command may refer to. `add rule` and `add element`
//   list every chain of every table, `delete ...` lists chains, sets and objects (~5-8 ms of CPU for the 5,000
//   chains of nft-ruleset.ts, more where nft's memory is touched for the first time; ~60 ms for the 20,000 of a
//   chain per endpoint); `flush chain`, `add chain`, `add set` and `add map` list only the tables. So the
//   difference is written in those forms: rules as `add chain T C { rules }`, elements as
//   `add map T M { type ...; elements = { ... } }`, and every set a written rule refers to declared again (a no-op
//   in the kernel, but nft then knows it without listing). Only a transaction that deletes something (an
//   endpoint's hairpin element, an element, set or chain) pays for the listing, once (`nft -i` lists again after
//   every commit, as the kernel's generation changed);
// - the kernel's commit: a transaction that adds a rule or a jump/goto element makes the kernel validate the
//   table (nf_tables_validate walks every chain reachable from each base chain, through every verdict map
//   element, so the service chains twice: from nat-prerouting and from nat-output): ~15 ms of CPU for 5,000
//   chains (~45 ms for 20,000), whatever the size of the change. This is most of what one change costs now; only
//   fewer chains make it cheaper.
// One endpoint removed and added back: ~20 ms of nft CPU per change (~30 ms with one `nft -f` each); the median
// wall time of a change 48-102 ms with a load of 16 on 2 CPUs, where `nft -f` and the walks took 330-460 ms.
import { spawn, type ChildProcess } from 'node:child_process';
import { ELEMENT_SETS, TABLE_FAMILY, TABLE_NAME, changedServices, elementSetType, elementText, rulesetText, staleUdpFlowsBetween, type CompiledRuleset, type ElementSet, type ServiceRules } from './nft-ruleset.js';
import type { UdpFlow } from './service-plan.js';

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

/**
 * Starts a long-running command, here or inside network namespace `netns`, with `env` added to this process'
 * environment: stdin piped, stdout and stderr merged into one pipe (so what it writes arrives in the order written).
 */
export type StartCommand = (command: string, args: string[], env?: Record<string, string>) => ChildProcess;

export function commandStarter(netns?: string): StartCommand {
  return (command, args, env) => {
    const merged = ['sh', '-c', 'exec "$0" "$@" 2>&1', command, ...args];
    const [cmd, ...argv] = netns ? ['ip', 'netns', 'exec', netns, ...merged] : merged;
    return spawn(cmd!, argv, { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, ...env } });
  };
}

/**
 * Sends one transaction (`nft -f` text) to nft; resolves as RunCommand does (code 0: the kernel took it; negative:
 * nft gave no answer).
 */
export type SendTransaction = (transaction: string) => Promise<CommandResult>;

/**
 * One long-lived `nft -i` that transactions are written to, each as one line (nft makes one line one netlink
 * batch, so one transaction, as `nft -f` makes one file), followed by a line nft cannot parse: its error message
 * repeats that line, which marks the end of what nft said about the transaction (nothing when the kernel took
 * it). Why not `nft -f` each time: a process that closes its netlink socket waits, in the kernel, for the release
 * of what the last commit replaced (an RCU grace period, ~10-20 ms of wall time that no CPU is spent on), and the
 * start of nft costs ~2 ms of CPU more. The process is started on first use and again after it died (a
 * transaction it died on gets a negative code: no answer), and replaced after SHELL_BUDGET bytes, since nft keeps
 * every line it read in its history; HOME points nowhere, so that no history file is read or written.
 */
export class NftShell {
  #child: ChildProcess | undefined;
  #output = '';
  #sent = 0;
  #serial = 0;
  #onOutput: (() => void) | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly start: StartCommand) {}

  /** Transactions are sent one at a time, in call order. */
  readonly send: SendTransaction = (transaction) => {
    const done = this.#queue.then(() => this.#send(transaction));
    this.#queue = done.catch(() => undefined);
    return done;
  };

  /** Ends the process (its stdin closes); a later send starts another. */
  close(): void {
    this.#child?.stdin?.end();
    this.#child = undefined;
  }

  #send(transaction: string): Promise<CommandResult> {
    const line = oneLine(transaction);
    if (this.#sent > SHELL_BUDGET) this.close();
    const child = this.#child ?? this.#started();
    this.#sent += line.length;
    const marker = `flotilla-end-${++this.#serial}`;
    return new Promise((resolve) => {
      const settle = (res: CommandResult): void => {
        this.#onOutput = undefined;
        child.off('exit', died);
        pipe(child.stdout).unref();
        resolve(res);
      };
      const died = (): void => settle({ code: -1, stdout: '', stderr: `nft -i exited: ${this.#output.trim()}` });
      this.#onOutput = () => {
        const at = this.#output.indexOf(`\n${marker}\n`);
        const end = at < 0 ? -1 : this.#output.indexOf('\n', at + marker.length + 2);
        if (end < 0) return;
        // What nft said about the transaction ends where its error message about the marker line starts.
        const said = this.#output.slice(0, this.#output.lastIndexOf('Error:', at));
        this.#output = this.#output.slice(end + 1);
        settle({ code: said.trim() === '' ? 0 : 1, stdout: '', stderr: said });
      };
      child.once('exit', died);
      // Only a transaction under way keeps the process that waits for it alive.
      pipe(child.stdout).ref();
      child.stdin!.write(`${line}\n${marker}\n`);
    });
  }

  #started(): ChildProcess {
    const child = this.start('nft', ['-i'], { HOME: '/nonexistent' });
    this.#child = child;
    this.#output = '';
    this.#sent = 0;
    child.unref();
    child.stdin!.on('error', () => {});
    pipe(child.stdin).unref();
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.#output += d;
      this.#onOutput?.();
    });
    child.on('exit', () => { if (this.#child === child) this.#child = undefined; });
    child.on('error', () => { if (this.#child === child) this.#child = undefined; });
    return child;
  }
}

/** The pipe under a child's stdio stream (a net.Socket), whose reference keeps this process alive or not. */
const pipe = (stream: unknown): { ref(): void; unref(): void } => stream as { ref(): void; unref(): void };

/** Bytes of transactions one `nft -i` process reads before it is replaced. */
const SHELL_BUDGET = 16 * 1024 * 1024;

/** A transaction of transaction() written on one line: commands and the rules of a chain block separated by `;`. */
function oneLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').join('; ').replaceAll('{; ', '{ ');
}

export class NftApplyError extends Error {}

export class NftApplier {
  /** The ruleset in force, as this process last wrote it; undefined before the first sync (or after a failed one). */
  #applied: CompiledRuleset | undefined;

  /** Differences go to `send` (by default `nft -f -` through `run`); a whole table always to `nft -f -`. */
  constructor(private readonly run: RunCommand, private readonly send: SendTransaction = (t) => run('nft', ['-f', '-'], t)) {}

  /** True when the kernel got a new ruleset, false when it was unchanged. Throws NftApplyError when nft refuses it. */
  async apply(next: CompiledRuleset): Promise<boolean> {
    const before = this.#applied;
    if (before) {
      const change = transaction(before, next);
      if (change === '') {
        this.#applied = next;
        return false;
      }
      let res = await this.send(change);
      // No answer at all (the shell died, or this nft was built without its interactive CLI): `nft -f` then.
      if (res.code < 0) res = await this.run('nft', ['-f', '-'], change);
      if (res.code !== 0) await this.#replace(next);
    } else {
      await this.#replace(next);
    }
    this.#applied = next;
    await clearConntrack(this.run, staleUdpFlowsBetween(before, next));
    return true;
  }

  async #replace(next: CompiledRuleset): Promise<void> {
    const res = await this.run('nft', ['-f', '-'], `table ${TABLE_FAMILY} ${TABLE_NAME} {\n}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n${rulesetText(next)}`);
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

const NO_RULES: ServiceRules = { sets: new Map(), chains: new Map(), elements: new Map(), udpFlows: [] };

/**
 * One transaction from `before` (in force) to `after` that touches only the Services whose rules are not the same
 * object: new chains declared (rules may jump to any of them), changed and vanished chains flushed, sets whose
 * declaration changed (another timeout) deleted and made anew, chains written, map elements deleted and added,
 * then chains and sets that went away deleted (nothing refers to them any more by then). '' when nothing changed.
 * The fixed part of the table (base chains, maps) never changes once written.
 */
export function transaction(before: CompiledRuleset, after: CompiledRuleset): string {
  const t = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const declared: string[] = [];
  const flushed: string[] = [];
  const remade: string[] = [];
  const sets: string[] = [];
  const written: string[] = [];
  /** Set -> key -> value of the elements a changed Service no longer has. */
  const goneElements = new Map<ElementSet, Map<string, string>>();
  const addedElements = new Map<ElementSet, string[]>();
  const gone: string[] = [];

  const diff = (a: ServiceRules, b: ServiceRules): void => {
    const remadeHere = [...b.sets].filter(([n, d]) => a.sets.has(n) && a.sets.get(n)!.join() !== d.join()).map(([n]) => n);
    remade.push(...remadeHere);
    let writes = false;
    for (const [name, rules] of b.chains) {
      const old = a.chains.get(name);
      if (old && old.join('\n') === rules.join('\n') && !remadeHere.some((set) => rules.some((r) => r.includes(`@${set} `)))) continue;
      if (old) flushed.push(name);
      else declared.push(name);
      written.push(`add chain ${t} ${name} {\n${rules.map((r) => `\t${r}\n`).join('')}}`);
      writes = true;
    }
    for (const name of a.chains.keys()) {
      if (b.chains.has(name)) continue;
      flushed.push(name);
      gone.push(`delete chain ${t} ${name}`);
    }
    // Every set of the Service is declared when one of its chains is written: new and remade ones must be, and
    // the others are so that nft finds them without listing the table (see the top of this file).
    for (const [name, decl] of b.sets) if (writes || !a.sets.has(name) || remadeHere.includes(name)) sets.push(`add set ${t} ${name} { ${decl.join('; ')}; }`);
    for (const name of a.sets.keys()) if (!b.sets.has(name)) gone.push(`delete set ${t} ${name}`);
    for (const set of Object.keys(ELEMENT_SETS) as ElementSet[]) {
      const was = a.elements.get(set);
      const now = b.elements.get(set);
      for (const [k, v] of was ?? []) {
        if (now?.get(k) === v) continue;
        if (!goneElements.has(set)) goneElements.set(set, new Map());
        goneElements.get(set)!.set(k, v);
      }
      for (const [k, v] of now ?? []) {
        if (was?.get(k) === v) continue;
        if (!addedElements.has(set)) addedElements.set(set, []);
        addedElements.get(set)!.push(elementText(set, k, v));
      }
    }
  };
  for (const key of changedServices(before, after)) {
    const a = before.services.get(key) ?? NO_RULES;
    const b = after.services.get(key) ?? NO_RULES;
    if (b !== a) diff(a, b);
  }
  // An element another Service still has stays (a pod behind two Services is in `hairpin` once); adding one that
  // is there already is a no-op in the kernel. The compiler's counts say so at once, else every Service is asked.
  const { generation = 0, owners } = after.lineage ?? {};
  for (const [set, keys] of goneElements) {
    for (const [k, v] of keys) {
      const kept = owners?.has(generation, set, k, v) ?? [...after.services.values()].some((rules) => rules.elements.get(set)?.get(k) === v);
      if (kept) keys.delete(k);
    }
  }

  const out = [
    ...declared.map((c) => `add chain ${t} ${c}`),
    ...flushed.map((c) => `flush chain ${t} ${c}`),
    ...remade.map((s) => `delete set ${t} ${s}`),
    ...sets,
    ...written,
    ...[...goneElements].filter(([, keys]) => keys.size > 0).map(([set, keys]) => `delete element ${t} ${set} { ${[...keys.keys()].join(', ')} }`),
    ...[...addedElements].map(([set, elements]) => `add ${ELEMENT_SETS[set][0]} ${t} ${set} { ${elementSetType(set)}; elements = { ${elements.join(', ')} } }`),
    ...gone,
  ];
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
