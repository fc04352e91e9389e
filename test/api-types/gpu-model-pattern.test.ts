// flotilla.io/gpu-model patterns: the supported subset means what RegExp means by it (checked on seeded random
// patterns and models), patterns outside it are refused with the reason, and matching never backtracks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GPU_MODEL_PATTERN_MAX_LENGTH, parseGpuModelPattern } from '../../api-types/index.js';
import { seededRandom } from '../scheduler/cluster-gen.js';

test('the documented and used patterns match as RegExp does', () => {
  const models = ['NVIDIA A100-SXM4-80GB', 'NVIDIA H100 80GB HBM3', 'NVIDIA GeForce RTX 4090', 'Tesla T4', 'AMD Instinct MI210', 'AMD Instinct MI300X'];
  for (const pattern of ['A100|H100', 'RTX 40', 'T4', 'MI2', 'H100', 'MI300', '^NVIDIA', '80GB$', 'A100-SXM4-(40|80)GB'.replace(/\(40\|80\)/, '[48]0'), 'RTX 40[0-9]0', '^Tesla T\\d$', '']) {
    const compiled = parseGpuModelPattern(pattern);
    for (const model of models) assert.is(compiled.test(model), new RegExp(pattern).test(model), `${pattern} on ${model}`);
  }
});

test('random patterns of the subset agree with RegExp on random models', () => {
  const rng = seededRandom(14);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
  const atoms = ['a', 'b', 'A', '1', '-', ' ', '.', '[ab]', '[^a]', '[a-c1]', '[-a]', '[\\]a]', '\\d', '\\w', '\\-', '\\.', '\\[', '[\\d-]', '[^\\w]'];
  const alternative = (): string => {
    let s = rng() < 0.2 ? '^' : '';
    // Mostly short; some over 32 atoms, so states span several words of the bit-parallel machine.
    const n = rng() < 0.25 ? 33 + Math.floor(rng() * 20) : Math.floor(rng() * 5);
    for (let i = 0; i < n; i++) s += pick(atoms) + pick(['', '', '*', '+', '?']);
    return s + (rng() < 0.2 ? '$' : '');
  };
  const alphabet = 'abA1- .\n_]';
  const atomsOnly = ['a', 'b', '.', '1', '-'];
  let checked = 0; let matched = 0; let wide = 0; let wideMatched = 0;
  for (let p = 0; p < 1000; p++) {
    let pattern = Array.from({ length: 1 + Math.floor(rng() * 3) }, alternative).join('|');
    // Long alternatives of one-character atoms keep within the length bound and span several state words.
    if (pattern.length > GPU_MODEL_PATTERN_MAX_LENGTH) {
      pattern = Array.from({ length: 33 + Math.floor(rng() * 30) }, () => pick(atomsOnly) + pick(['', '*', '+', '?'])).join('').slice(0, GPU_MODEL_PATTERN_MAX_LENGTH).replace(/^[*+?]/, '');
      wide++;
    }
    const compiled = parseGpuModelPattern(pattern); const re = new RegExp(pattern);
    for (let m = 0; m < 40; m++) {
      const model = Array.from({ length: Math.floor(rng() * (rng() < 0.3 ? 90 : 9)) }, () => pick([...alphabet])).join('');
      const want = re.test(model);
      assert.is(compiled.test(model), want, `/${pattern}/ on ${JSON.stringify(model)}`);
      checked++; if (want) matched++;
      if (want && compiled.source.length > 60) wideMatched++;
    }
  }
  assert.ok(matched > checked / 10 && matched < checked * 9 / 10, `both outcomes exercised: ${matched}/${checked}`);
  assert.ok(wide > 50 && wideMatched > 100, `patterns over 32 atoms: ${wide}, long patterns matching: ${wideMatched}`);
});

test('patterns outside the subset are refused, naming what is unsupported', () => {
  const refused: [string, RegExp][] = [
    ['(a+)+$', /groups "\( \)" are not supported at offset 0/],
    ['A100(', /groups/],
    ['(?=A)', /groups/],
    ['a{2,}', /counted repetition/],
    ['\\1', /escape "\\1" is not supported/],
    ['\\bA100', /escape "\\b" is not supported/],
    ['a**', /lazy or stacked quantifiers/],
    ['a+?', /lazy or stacked quantifiers/],
    ['*a', /"\*" must follow/],
    ['a^b', /"\^" must start an alternative/],
    ['a$b', /"\$" must end an alternative/],
    ['[ab', /unterminated character class/],
    ['[]', /empty character class/],
    ['[z-a]', /range out of order/],
    ['[\\d-z]', /cannot start or end with \\d/],
    ['a]', /unmatched "\]"/],
    ['a\\', /trailing "\\"/],
    ['x'.repeat(GPU_MODEL_PATTERN_MAX_LENGTH + 1), /must be no more than 128 characters/],
  ];
  for (const [pattern, why] of refused) assert.throws(() => parseGpuModelPattern(pattern), why, pattern);
});

test('a pattern that backtracks catastrophically in RegExp is matched by the NFA without backtracking', () => {
  // /^(a|a)*$/-like blow-ups need groups, which are refused; the closest the subset allows runs in
  // O(model x pattern): every atom is visited once per character.
  const hostile = 'a'.repeat(29) + 'b';
  assert.is(parseGpuModelPattern('^a*a*a*a*a*a*a*a*a*a*$').test(hostile), false);
  assert.is(parseGpuModelPattern('^a+a+a+a+a+a+a+a+a+a+$').test(hostile), false);
  assert.is(parseGpuModelPattern('^a+a+a+a+a+a+a+a+a+a+b$').test(hostile), true);
  // (a?){n}a{n} against a{n}: RegExp backtracks through 2^n ways to skip the optional atoms (never run here).
  const classic = parseGpuModelPattern('^' + 'a?'.repeat(40) + 'a'.repeat(40) + '$');
  assert.is(classic.test('a'.repeat(40)), true);
  assert.is(classic.test('a'.repeat(81)), false);
});

test.run();
