// Label selectors (equality- and set-based, text and object forms) and field selectors, as in the
// Kubernetes list API: ?labelSelector=app=web,tier!=db,env in (prod,staging),!canary&fieldSelector=spec.nodeName=n1
import { labelKeyError, labelValueError } from './names.js';
import type { LabelSelectorSpec } from './objects.js';

export class SelectorError extends Error {
  override name = 'SelectorError';
}

export type LabelOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** `a=b` is In [b] and `a!=b` is NotIn [b]: the same semantics, a missing key matches NotIn. */
export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  /** Non-empty for In/NotIn, empty for Exists/DoesNotExist. */
  values: readonly string[];
}

/** All requirements must hold (AND). No requirements selects everything. */
export interface LabelSelector {
  requirements: readonly LabelRequirement[];
}

type Token =
  | { kind: 'word'; text: string; at: number }
  | { kind: '=' | '==' | '!=' | '!' | '(' | ')' | ','; at: number }
  | { kind: 'end'; at: number };

const SEPARATORS = new Set([' ', '\t', '\n', '\r', ',', '=', '!', '(', ')']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { i++; continue; }
    if (c === '=' || c === '!') {
      const two = text.slice(i, i + 2);
      if (two === '==' || two === '!=') { tokens.push({ kind: two, at: i }); i += 2; continue; }
      tokens.push({ kind: c, at: i }); i++; continue;
    }
    if (c === '(' || c === ')' || c === ',') { tokens.push({ kind: c, at: i }); i++; continue; }
    const start = i;
    while (i < text.length && !SEPARATORS.has(text[i]!)) i++;
    tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
  }
  tokens.push({ kind: 'end', at: text.length });
  return tokens;
}

function describe(t: Token): string {
  return t.kind === 'word' ? `"${t.text}"` : t.kind === 'end' ? 'end of input' : `"${t.kind}"`;
}

function checkKey(text: string, key: string): void {
  const why = labelKeyError(key);
  if (why !== undefined) throw new SelectorError(`invalid label selector "${text}": ${why}`);
}

function checkValue(text: string, value: string): void {
  const why = labelValueError(value);
  if (why !== undefined) throw new SelectorError(`invalid label selector "${text}": ${why}`);
}

/** Parses the text form; an empty or blank text selects everything. Throws SelectorError naming the problem. */
export function parseLabelSelector(text: string): LabelSelector {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = (): Token => tokens[pos]!;
  const fail = (t: Token, expected: string): never => {
    throw new SelectorError(`invalid label selector "${text}": expected ${expected} at position ${t.at}, found ${describe(t)}`);
  };
  const word = (expected: string): string => {
    const t = tokens[pos++]!;
    return t.kind === 'word' ? t.text : fail(t, expected);
  };
  const requirements: LabelRequirement[] = [];
  if (peek().kind === 'end') return { requirements };
  for (;;) {
    if (peek().kind === '!') {
      pos++;
      const key = word('a label key after "!"');
      checkKey(text, key);
      requirements.push({ key, operator: 'DoesNotExist', values: [] });
    } else {
      const key = word('a label key');
      checkKey(text, key);
      const op = peek();
      if (op.kind === '=' || op.kind === '==' || op.kind === '!=') {
        pos++;
        // `a=` (followed by "," or the end) compares with the empty value, as Kubernetes allows.
        const next = peek();
        const value = next.kind === 'word' ? (pos++, next.text) : next.kind === ',' || next.kind === 'end' ? '' : fail(next, 'a value');
        checkValue(text, value);
        requirements.push({ key, operator: op.kind === '!=' ? 'NotIn' : 'In', values: [value] });
      } else if (op.kind === 'word' && (op.text === 'in' || op.text === 'notin')) {
        pos++;
        if (tokens[pos++]!.kind !== '(') fail(tokens[pos - 1]!, `"(" after "${op.text}"`);
        const values: string[] = [];
        for (;;) {
          const value = word('a value');
          checkValue(text, value);
          values.push(value);
          const sep = tokens[pos++]!;
          if (sep.kind === ')') break;
          if (sep.kind !== ',') fail(sep, '"," or ")"');
        }
        requirements.push({ key, operator: op.text === 'in' ? 'In' : 'NotIn', values });
      } else if (op.kind === ',' || op.kind === 'end') {
        requirements.push({ key, operator: 'Exists', values: [] });
      } else {
        fail(op, 'an operator (=, ==, !=, in, notin), "," or the end');
      }
    }
    const sep = tokens[pos++]!;
    if (sep.kind === 'end') return { requirements };
    if (sep.kind !== ',') fail(sep, '","');
  }
}

/**
 * The object form (spec.selector of a Deployment, ReplicaSet, ...). matchLabels come first, sorted by key,
 * then matchExpressions in order. Throws SelectorError on an unknown operator or misplaced values.
 */
export function labelSelectorFromSpec(spec: LabelSelectorSpec): LabelSelector {
  const requirements: LabelRequirement[] = [];
  for (const key of Object.keys(spec.matchLabels ?? {}).sort()) {
    const value = spec.matchLabels![key]!;
    checkKey('matchLabels', key);
    checkValue('matchLabels', value);
    requirements.push({ key, operator: 'In', values: [value] });
  }
  for (const [i, e] of (spec.matchExpressions ?? []).entries()) {
    const where = `matchExpressions[${i}]`;
    checkKey(where, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) throw new SelectorError(`invalid label selector ${where}: operator ${e.operator} needs at least one value`);
        for (const v of values) checkValue(where, v);
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0) throw new SelectorError(`invalid label selector ${where}: operator ${e.operator} takes no values`);
        break;
      default:
        throw new SelectorError(`invalid label selector ${where}: unknown operator "${String(e.operator)}" (expected In, NotIn, Exists or DoesNotExist)`);
    }
    requirements.push({ key: e.key, operator: e.operator, values: [...values] });
  }
  return { requirements };
}

export function matchesLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const has = (key: string): boolean => labels !== undefined && Object.prototype.hasOwnProperty.call(labels, key);
  return sel.requirements.every((r) => {
    switch (r.operator) {
      case 'In': return has(r.key) && r.values.includes(labels![r.key]!);
      case 'NotIn': return !has(r.key) || !r.values.includes(labels![r.key]!);
      case 'Exists': return has(r.key);
      case 'DoesNotExist': return !has(r.key);
    }
  });
}

/** The text form; parseLabelSelector(formatLabelSelector(s)) selects the same objects as s. */
export function formatLabelSelector(sel: LabelSelector): string {
  return sel.requirements.map((r) => {
    switch (r.operator) {
      case 'Exists': return r.key;
      case 'DoesNotExist': return `!${r.key}`;
      case 'In': return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
      case 'NotIn': return r.values.length === 1 ? `${r.key}!=${r.values[0]}` : `${r.key} notin (${r.values.join(',')})`;
    }
  }).join(',');
}

// ---- field selectors -----------------------------------------------------------------------------------

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

/** All requirements must hold. No requirements selects everything. */
export interface FieldSelector {
  requirements: readonly FieldRequirement[];
}

/**
 * Parses `path=value,path!=value` (== is the same as =) over the allowed field paths only. Values may be
 * empty (`spec.nodeName=` selects unscheduled pods). Backslash escapes are not supported.
 */
export function parseFieldSelector(text: string, allowed: readonly string[]): FieldSelector {
  const requirements: FieldRequirement[] = [];
  if (text.trim() === '') return { requirements };
  for (const part of text.split(',')) {
    const m = /^\s*([^=!\s]+)\s*(==|!=|=)\s*([^=!]*?)\s*$/.exec(part);
    if (m === null) {
      throw new SelectorError(`invalid field selector "${text}": "${part}" is not of the form field=value, field==value or field!=value`);
    }
    const field = m[1]!;
    if (!allowed.includes(field)) {
      throw new SelectorError(`invalid field selector "${text}": field "${field}" is not supported; supported fields: ${allowed.join(', ')}`);
    }
    requirements.push({ field, operator: m[2] === '!=' ? '!=' : '=', value: m[3]! });
  }
  return { requirements };
}

/** `value(path)` reads the object's field; a missing field compares as the empty string, as in Kubernetes. */
export function matchesFields(sel: FieldSelector, value: (path: string) => string | undefined): boolean {
  return sel.requirements.every((r) => ((value(r.field) ?? '') === r.value) === (r.operator === '='));
}
