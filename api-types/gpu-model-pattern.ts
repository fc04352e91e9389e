// The pattern language of the flotilla.io/gpu-model pod annotation: a subset of JavaScript regular expressions
// that is matched in time linear in the model string (an NFA over the pattern's atoms, run bit-parallel, never
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

/** Longest flotilla.io/gpu-model pattern accepted, in UTF-16 code units (as String.length counts). Matching
 * costs up to (model length x atoms) per model, so this bounds the work one pod can ask per GPU model. */
export const GPU_MODEL_PATTERN_MAX_LENGTH = 128;

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
  const machines = alternatives.map(compile);
  return { source, test: (model) => machines.some((m) => run(m, model)) };
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

// One alternative ready to run, bit-parallel (Shift-And over states): state j, "atoms [0, j) matched", is bit
// j & 31 of word j >> 5; state atoms.length accepts. For ASCII characters a table holds the atoms that match
// them (character c: words [c * words, (c + 1) * words)), so a step is a few word operations.
interface Machine {
  atoms: Atom[]; start: boolean; end: boolean; words: number; ascii: Uint32Array;
  repeat: Uint32Array; // atoms that may match again (* +): state j stays j
  optional: Uint32Array; // atoms that may match nothing (* ?): state j reaches j + 1 without a character
  buffers: [Uint32Array, Uint32Array, Uint32Array]; // run's state sets and non-ASCII table (run is not re-entered)
}

function compile(alt: Alternative): Machine {
  const k = alt.atoms.length; const words = Math.ceil((k + 1) / 32);
  const ascii = new Uint32Array(128 * words); const repeat = new Uint32Array(words); const optional = new Uint32Array(words);
  alt.atoms.forEach((atom, j) => {
    const w = j >> 5; const bit = 1 << (j & 31);
    for (let c = 0; c < 128; c++) if (atom.matches(c)) ascii[c * words + w]! |= bit;
    if (atom.repeat) repeat[w]! |= bit;
    if (atom.optional) optional[w]! |= bit;
  });
  const buffers = [new Uint32Array(words), new Uint32Array(words), new Uint32Array(words)] as Machine['buffers'];
  return { atoms: alt.atoms, start: alt.start, end: alt.end, words, ascii, repeat, optional, buffers };
}

/** Adds every state reachable by skipping optional atoms. Within each run of optional atoms [a, b), the states
 * from the lowest one set up to b are reached: with S the run's bits and x the set ones among them,
 * (S + x) ^ S is exactly those bits, the carry landing on b (never in a run: runs are maximal). */
function close(m: Machine, states: Uint32Array): void {
  let carry = 0;
  for (let w = 0; w < m.words; w++) {
    const s = m.optional[w]!; const sum = s + (states[w]! & s) + carry;
    carry = sum > 0xffffffff ? 1 : 0;
    states[w] = states[w]! | ((sum >>> 0) ^ s);
  }
}

/** Runs one alternative over `model`: O(model.length * atoms / 32) word operations. */
function run(m: Machine, model: string): boolean {
  const W = m.words; const k = m.atoms.length;
  let [states, next, wide] = m.buffers;
  states.fill(0);
  const acceptWord = k >> 5; const acceptBit = 1 << (k & 31);
  states[0] = 1; close(m, states);
  for (let pos = 0; ; pos++) {
    if ((states[acceptWord]! & acceptBit) !== 0 && (!m.end || pos === model.length)) return true;
    if (pos === model.length) return false;
    const c = model.charCodeAt(pos);
    let table = m.ascii; let at = c * W;
    if (c >= 128) { // outside the table: this character's atoms, computed here
      wide.fill(0);
      m.atoms.forEach((atom, j) => { if (atom.matches(c)) wide[j >> 5]! |= 1 << (j & 31); });
      table = wide; at = 0;
    }
    let carry = 0; let live = 0;
    for (let w = 0; w < W; w++) {
      const t = states[w]! & table[at + w]!; // states whose atom matches c
      next[w] = (t << 1) | carry | (t & m.repeat[w]!);
      carry = t >>> 31;
      live |= next[w]!;
    }
    if (!m.start) { next[0] = next[0]! | 1; live = 1; } // unanchored: a match may begin at every position
    if (live === 0) return false;
    close(m, next);
    const done = states; states = next; next = done;
  }
}
