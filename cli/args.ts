/** A command-line flag a command accepts. `list` flags may repeat (-f a -f b). */
export interface FlagSpec { name: string; short?: string; kind: 'string' | 'boolean' | 'list' }

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
  /** Everything after a bare `--` (exec's command). */
  rest: string[];
}

export class UsageError extends Error {}

/** Parses argv against the flags a command declares; an unknown flag or a missing value is a UsageError. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const out: ParsedArgs = { positionals: [], flags: {}, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') { out.rest = argv.slice(i + 1); break; }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byName.get(name);
      if (!spec && name.startsWith('no-') && byName.get(name.slice(3))?.kind === 'boolean') {
        out.flags[name.slice(3)] = false;
        continue;
      }
      if (!spec) throw new UsageError(`unknown flag --${name}`);
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      const eq = arg.indexOf('=');
      const short = eq >= 0 ? arg.slice(1, eq) : arg.slice(1);
      inline = eq >= 0 ? arg.slice(eq + 1) : undefined;
      spec = byShort.get(short);
      if (!spec) throw new UsageError(`unknown flag -${short}`);
    } else {
      out.positionals.push(arg);
      continue;
    }
    if (spec.kind === 'boolean') {
      if (inline !== undefined && inline !== 'true' && inline !== 'false') throw new UsageError(`--${spec.name} takes true or false, not "${inline}"`);
      out.flags[spec.name] = inline === undefined ? true : inline === 'true';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${spec.name} needs a value`);
    if (spec.kind === 'list') out.flags[spec.name] = [...((out.flags[spec.name] as string[] | undefined) ?? []), value];
    else out.flags[spec.name] = value;
  }
  return out;
}

export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolFlag(args: ParsedArgs, name: string): boolean {
  return args.flags[name] === true;
}

export function listFlag(args: ParsedArgs, name: string): string[] {
  const v = args.flags[name];
  return Array.isArray(v) ? v : [];
}
