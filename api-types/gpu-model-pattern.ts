// The pattern language of the flotilla.io/gpu-model pod annotation: a subset of JavaScript regular expressions
// that is matched in time linear in the model string (a Thompson NFA run over the pattern's atoms, never
// backtracking), because the models it is matched against are written by nodes, not by the pod's author.
//
// Syntax (what RegExp means by it, unanchored, case-sensitive):
//   alternatives    A100|H100          top level only; an empty alternative matches every model
//   anchors         ^NVIDIA  80GB$     ^ only first in an alternative, $ only last
//   atoms           a literal character, `.` (any character but a line terminator), `\` before a punctuation
//                   character (that character), `\d`, `\w`, a class `[A-Z0-9_-]` / `[^x]` (ranges, `\d`,
//                   `\w`, escaped punctuation inside)
//   quantifiers     `*`, `+`, `?` after an atom, one per atom
// Refused, with the reason: groups `( )`, counted repetition `{ }`, back-references, lookaround, lazy or
// stacked quantifiers, other escapes, and patterns longer than GPU_MODEL_PATTERN_MAX_LENGTH.

/** Longest flotilla.io/gpu-model pattern accepted, in UTF-16 code units (as String.length counts). */
export const GPU_MODEL_PATTERN_MAX_LENGTH = 256;

/** A compiled flotilla.io/gpu-model pattern. */
export interface GpuModelPattern {
  readonly source: string;
  /** Whether the pattern matches somewhere in `model`; O(model.length * source.length). */
  test(model: string): boolean;
}

type CharTest = (c: number) => boolean;
interface Atom { matches: CharTest; repeat: boolean; optional: boolean }
interface Alternative { atoms: Atom[]; start: boolean; end: boolean }

// Line terminators, which `.` does not match (ECMAScript LineTerminator).
const isLineTerminator = (c: number): boolean => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isWord = (c: number): boolean => isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
const isAsciiAlphanumeric = (ch: string): boolean => /^[A-Za-z0-9]$/.test(ch);
const QUANTIFIERS = '*+?';
const REFUSED: Record<string, string> = {
  '(': 'groups "( )" are not supported', ')': 'groups "( )" are not supported',
  '{': 'counted repetition "{ }" is not supported', '}': 'counted repetition "{ }" is not supported',
  ']': 'unmatched "]"',
};

class PatternError extends Error {}

/** Parses a flotilla.io/gpu-model pattern. Throws an Error saying what is unsupported and where. */
export function parseGpuModelPattern(source: string): GpuModelPattern {
  if (source.length > GPU_MODEL_PATTERN_MAX_LENGTH) {
    throw new Error(`must be no more than ${GPU_MODEL_PATTERN_MAX_LENGTH} characters (got ${source.length})`);
  }
  let alternatives: Alternative[];
  try { alternatives = parse(source); } catch (e) {
    if (e instanceof PatternError) throw new Error(`unsupported pattern "${source}": ${e.message} (supported: literals, ., [classes], \\d, \\w, * + ?, ^ $, |)`);
    throw e;
  }
  return { source, test: (model) => alternatives.some((a) => run(a, model)) };
}

function parse(source: string): Alternative[] {
  const alternatives: Alternative[] = [];
  let current: Alternative = { atoms: [], start: false, end: false };
  let i = 0;
  const fail = (why: string): never => { throw new PatternError(`${why} at offset ${i}`); };
  // An escape after the backslash at i; returns the character test and moves past it.
  const escape = (): CharTest => {
    const ch = source[i + 1];
    if (ch === undefined) fail('trailing "\\"');
    i += 2;
    if (ch === 'd') return isDigit;
    if (ch === 'w') return isWord;
    if (isAsciiAlphanumeric(ch!)) { i -= 2; fail(`escape "\\${ch}" is not supported`); }
    const code = ch!.charCodeAt(0);
    return (c) => c === code;
  };
  const charClass = (): CharTest => {
    const open = i;
    i++;
    const negate = source[i] === '^';
    if (negate) i++;
    const items: CharTest[] = [];
    // One class member: a character, or a single-character escape; `set` when it stands for a set (\d, \w).
    const member = (): { code: number } | { set: CharTest } => {
      if (source[i] === '\\') {
        const ch = source[i + 1];
        if (ch === 'd' || ch === 'w') { i += 2; return { set: ch === 'd' ? isDigit : isWord }; }
        if (ch === undefined) fail('trailing "\\"');
        if (isAsciiAlphanumeric(ch!)) fail(`escape "\\${ch}" is not supported`);
        i += 2;
        return { code: ch!.charCodeAt(0) };
      }
      return { code: source.charCodeAt(i++) };
    };
    while (i < source.length && source[i] !== ']') {
      const lo = member();
      if (source[i] === '-' && i + 1 < source.length && source[i + 1] !== ']') {
        i++;
        const hi = member();
        if ('set' in lo || 'set' in hi) fail('a range cannot start or end with \\d or \\w');
        const from = (lo as { code: number }).code; const to = (hi as { code: number }).code;
        if (from > to) fail(`range out of order in character class`);
        items.push((c) => c >= from && c <= to);
      } else {
        items.push('set' in lo ? lo.set : ((code) => (c: number) => c === code)(lo.code));
      }
    }
    if (i >= source.length) { i = open; fail('unterminated character class "["'); }
    if (items.length === 0) fail('empty character class');
    i++;
    return negate ? (c) => !items.some((t) => t(c)) : (c) => items.some((t) => t(c));
  };
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '|') { alternatives.push(current); current = { atoms: [], start: false, end: false }; i++; continue; }
    if (current.end) fail('"$" must end an alternative');
    if (ch === '^') {
      if (current.atoms.length > 0 || current.start) fail('"^" must start an alternative');
      current.start = true; i++; continue;
    }
    if (ch === '$') { current.end = true; i++; continue; }
    if (QUANTIFIERS.includes(ch)) fail(`"${ch}" must follow a character, "." or a class, once`);
    const why = REFUSED[ch];
    if (why !== undefined) fail(why);
    let matches: CharTest;
    if (ch === '.') { matches = (c) => !isLineTerminator(c); i++; }
    else if (ch === '\\') matches = escape();
    else if (ch === '[') matches = charClass();
    else { const code = source.charCodeAt(i); matches = (c) => c === code; i++; }
    const q = source[i];
    const atom: Atom = { matches, repeat: q === '*' || q === '+', optional: q === '*' || q === '?' };
    if (q !== undefined && QUANTIFIERS.includes(q)) {
      i++;
      if (source[i] !== undefined && QUANTIFIERS.includes(source[i]!)) fail('lazy or stacked quantifiers are not supported');
    }
    current.atoms.push(atom);
  }
  alternatives.push(current);
  return alternatives;
}

/** Runs one alternative as an NFA over `model`: state k means "atoms [0, k) matched"; k = atoms.length accepts. */
function run(alt: Alternative, model: string): boolean {
  const k = alt.atoms.length;
  let states = new Uint8Array(k + 1); let next = new Uint8Array(k + 1);
  // Optional atoms may be skipped: a state reaches every state after a run of optional atoms.
  const close = (s: Uint8Array): void => { for (let j = 0; j < k; j++) if (s[j] && alt.atoms[j]!.optional) s[j + 1] = 1; };
  states[0] = 1; close(states);
  for (let pos = 0; ; pos++) {
    if (states[k] && (!alt.end || pos === model.length)) return true;
    if (pos === model.length) return false;
    const c = model.charCodeAt(pos);
    next.fill(0);
    for (let j = 0; j < k; j++) {
      if (!states[j] || !alt.atoms[j]!.matches(c)) continue;
      next[j + 1] = 1;
      if (alt.atoms[j]!.repeat) next[j] = 1;
    }
    if (!alt.start) next[0] = 1; // unanchored: a match may begin at every position
    close(next);
    [states, next] = [next, states];
  }
}
