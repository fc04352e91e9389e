import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  SelectorError, formatLabelSelector, labelSelectorFromSpec, matchesFields, matchesLabels, parseFieldSelector,
  parseLabelSelector,
} from '../../api-types/index.js';
import type { LabelSelectorSpec } from '../../api-types/index.js';

const web = { app: 'web', tier: 'frontend', env: 'prod' };
const db = { app: 'db', tier: 'backend' };
const canary = { app: 'web', tier: 'frontend', env: 'staging', canary: 'true' };
const none = {};

// [selector text, canonical text, which of web, db, canary, none (and undefined labels) it selects]
const table: [string, string, [boolean, boolean, boolean, boolean]][] = [
  ['', '', [true, true, true, true]],
  ['   ', '', [true, true, true, true]],
  ['app=web', 'app=web', [true, false, true, false]],
  ['app==web', 'app=web', [true, false, true, false]],
  ['app = web', 'app=web', [true, false, true, false]],
  ['app!=web', 'app!=web', [false, true, false, true]],
  ['app', 'app', [true, true, true, false]],
  ['!canary', '!canary', [true, true, false, true]],
  ['env in (prod,staging)', 'env in (prod,staging)', [true, false, true, false]],
  ['env in ( prod , staging )', 'env in (prod,staging)', [true, false, true, false]],
  ['env in(prod)', 'env=prod', [true, false, false, false]],
  ['env notin (prod)', 'env!=prod', [false, true, true, true]],
  ['env notin (prod,staging)', 'env notin (prod,staging)', [false, true, false, true]],
  ['app=web,tier=frontend', 'app=web,tier=frontend', [true, false, true, false]],
  ['app=web,!canary', 'app=web,!canary', [true, false, false, false]],
  ['tier,env!=staging', 'tier,env!=staging', [true, true, false, false]],
  ['app=', 'app=', [false, false, false, false]],
  ['in=x', 'in=x', [false, false, false, false]],
  ['app.kubernetes.io/name=web', 'app.kubernetes.io/name=web', [false, false, false, false]],
];

for (const [text, canonical, [w, d, c, n]] of table) {
  test(`label selector "${text}"`, () => {
    const sel = parseLabelSelector(text);
    assert.is(formatLabelSelector(sel), canonical);
    assert.equal([matchesLabels(sel, web), matchesLabels(sel, db), matchesLabels(sel, canary), matchesLabels(sel, none)], [w, d, c, n]);
    assert.is(matchesLabels(sel, undefined), n, 'undefined labels behave as no labels');
    const again = parseLabelSelector(canonical);
    assert.equal(again, sel, 'the canonical text parses to the same selector');
  });
}

test('an "in" with a key named in parses as a key', () => {
  const sel = parseLabelSelector('in in (in)');
  assert.equal(sel.requirements, [{ key: 'in', operator: 'In', values: ['in'] }]);
});

test('empty label value compares with the empty string', () => {
  assert.ok(matchesLabels(parseLabelSelector('app='), { app: '' }));
  assert.not.ok(matchesLabels(parseLabelSelector('app!='), { app: '' }));
});

const badLabelSelectors: [string, RegExp][] = [
  ['a in ()', /expected a value/],
  ['a in (x', /expected "," or "\)"/],
  ['a in x', /expected "\(" after "in"/],
  ['=b', /expected a label key/],
  ['a=b=c', /expected ","/],
  ['a b', /expected an operator/],
  ['!', /label key after "!"/],
  ['a,,b', /expected a label key at position 2/],
  ['a,', /expected a label key/],
  ['a=b!', /expected ","/],
  ['a/b/c=d', /key "a\/b\/c"/],
  ['-a=b', /key "-a"/],
  ['a=-b', /value "-b"/],
  ['Example.COM/a=b', /prefix/],
  [`a=${'x'.repeat(64)}`, /63 characters/],
  [`${'k'.repeat(64)}`, /63 characters/],
  ['a in (x,)', /expected a value/],
  ['!a=b', /expected ","/],
  ['(a)', /expected a label key/],
];
for (const [text, why] of badLabelSelectors) {
  test(`label selector "${text}" is refused`, () => {
    try {
      parseLabelSelector(text);
    } catch (e) {
      assert.instance(e, SelectorError);
      assert.ok((e as Error).message.includes(`"${text}"`), `names the selector: ${(e as Error).message}`);
      assert.match((e as Error).message, why);
      return;
    }
    assert.unreachable(`accepted "${text}"`);
  });
}

test('labelSelectorFromSpec: matchLabels (sorted) and every operator', () => {
  const spec: LabelSelectorSpec = {
    matchLabels: { tier: 'frontend', app: 'web' },
    matchExpressions: [
      { key: 'env', operator: 'In', values: ['prod', 'staging'] },
      { key: 'canary', operator: 'DoesNotExist' },
      { key: 'tier', operator: 'Exists' },
      { key: 'zone', operator: 'NotIn', values: ['b'] },
    ],
  };
  const sel = labelSelectorFromSpec(spec);
  assert.is(formatLabelSelector(sel), 'app=web,tier=frontend,env in (prod,staging),!canary,tier,zone!=b');
  assert.ok(matchesLabels(sel, web));
  assert.not.ok(matchesLabels(sel, canary));
  assert.not.ok(matchesLabels(sel, { ...web, zone: 'b' }));
  assert.ok(matchesLabels(sel, { ...web, zone: 'a' }));
  assert.ok(matchesLabels(labelSelectorFromSpec({}), db), 'an empty spec selects everything');
});

const badSpecs: [LabelSelectorSpec, RegExp][] = [
  [{ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }, /matchExpressions\[0\].*needs at least one value/],
  [{ matchExpressions: [{ key: 'a', operator: 'NotIn' }] }, /needs at least one value/],
  [{ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }, /takes no values/],
  [{ matchExpressions: [{ key: 'a', operator: 'Gt' as 'In', values: ['1'] }] }, /unknown operator "Gt"/],
  [{ matchLabels: { 'bad key': 'x' } }, /key "bad key"/],
  [{ matchLabels: { a: 'bad value' } }, /value "bad value"/],
];
for (const [spec, why] of badSpecs) {
  test(`labelSelectorFromSpec refuses ${JSON.stringify(spec)}`, () => {
    assert.throws(() => labelSelectorFromSpec(spec), (e: unknown) => e instanceof SelectorError && why.test((e as Error).message));
  });
}

const podFields = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'];
const pending = { 'metadata.name': 'a', 'metadata.namespace': 'default', 'status.phase': 'Pending' } as Record<string, string>;
const running = { 'metadata.name': 'b', 'metadata.namespace': 'default', 'spec.nodeName': 'n1', 'status.phase': 'Running' } as Record<string, string>;

const fieldTable: [string, boolean, boolean][] = [
  ['', true, true],
  ['spec.nodeName=n1', false, true],
  ['spec.nodeName==n1', false, true],
  ['spec.nodeName!=n1', true, false],
  ['spec.nodeName=', true, false],
  ['status.phase=Running,metadata.namespace=default', false, true],
  ['status.phase!=Running,status.phase!=Succeeded', true, false],
  [' metadata.name = a ', true, false],
];
for (const [text, p, r] of fieldTable) {
  test(`field selector "${text}"`, () => {
    const sel = parseFieldSelector(text, podFields);
    assert.is(matchesFields(sel, (path) => pending[path]), p);
    assert.is(matchesFields(sel, (path) => running[path]), r);
  });
}

const badFieldSelectors: [string, RegExp][] = [
  ['spec.foo=1', /field "spec\.foo" is not supported; supported fields: metadata\.name/],
  ['spec.nodeName', /not of the form/],
  ['spec.nodeName=a=b', /not of the form/],
  ['spec.nodeName=a,', /not of the form/],
  ['=a', /not of the form/],
  ['spec.nodeName!a', /not of the form/],
];
for (const [text, why] of badFieldSelectors) {
  test(`field selector "${text}" is refused`, () => {
    assert.throws(() => parseFieldSelector(text, podFields),
      (e: unknown) => e instanceof SelectorError && why.test((e as Error).message) && (e as Error).message.includes(`"${text}"`));
  });
}

test.run();
