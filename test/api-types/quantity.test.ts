import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { QuantityError, bytes, cpuMillis, formatBytes, formatCpu, parseQuantity } from '../../api-types/index.js';

// [input, exact value in thousandths]
const valid: [string | number, bigint][] = [
  ['0', 0n],
  ['1', 1000n],
  ['500m', 500n],
  ['1.5', 1500n],
  ['.5', 500n],
  ['1.', 1000n],
  ['+2', 2000n],
  ['-2', -2000n],
  ['0.001', 1n],
  ['1k', 1_000_000n],
  ['1.5k', 1_500_000n],
  ['1M', 1_000_000_000n],
  ['1G', 1_000_000_000_000n],
  ['1T', 10n ** 15n],
  ['1P', 10n ** 18n],
  ['1E', 10n ** 21n],
  ['1Ki', 1_024_000n],
  ['1Mi', 1_048_576_000n],
  ['1.5Gi', 1_610_612_736_000n],
  ['2Gi', 2_147_483_648_000n],
  ['1Ti', 1024n ** 4n * 1000n],
  ['1Pi', 1024n ** 5n * 1000n],
  ['1Ei', 1024n ** 6n * 1000n],
  ['0.5Ki', 512_000n],
  ['1e3', 1_000_000n],
  ['1E3', 1_000_000n],
  ['12e+2', 1_200_000n],
  ['1e-3', 1n],
  ['5e-1', 500n],
  ['100u', 1n], // 0.0001 rounds up to the next thousandth
  ['1n', 1n],
  ['1000000n', 1n],
  ['1500000n', 2n],
  ['-1n', 0n], // rounds up toward +infinity
  ['0.0001', 1n],
  ['123456789012345678901234567890', 123456789012345678901234567890000n],
  [3, 3000n],
  [0.25, 250n],
  [1e21, 10n ** 24n],
  [1e-7, 1n],
];

for (const [input, milli] of valid) {
  test(`parseQuantity(${JSON.stringify(input)}) = ${milli} thousandths`, () => {
    assert.is(parseQuantity(input).milli, milli);
  });
}

const invalid: unknown[] = [
  '', ' ', '12XYZ', '1.2.3', '--1', '+-1', 'Mi', '1 Mi', '1mi', '1KI', '1K', 'k', '1e', 'e3', '1e3.5', '.', '1..',
  '0x10', '1,5', 'Infinity', 'NaN', '1Gi ', ' 1', '1e1000', '1ee3', '1Mi3', NaN, Infinity, -Infinity, null, {}, [],
];

for (const input of invalid) {
  test(`parseQuantity(${JSON.stringify(input) ?? String(input)}) throws a QuantityError naming it`, () => {
    try {
      parseQuantity(input as string);
    } catch (e) {
      assert.instance(e, QuantityError);
      const shown = typeof input === 'string' ? `"${input}"` : typeof input === 'number' ? String(input) : JSON.stringify(input);
      assert.ok((e as Error).message.includes(shown), `message "${(e as Error).message}" names ${shown}`);
      return;
    }
    assert.unreachable(`accepted ${String(input)}`);
  });
}

test('cpuMillis rounds up to whole millicores', () => {
  assert.is(cpuMillis('100m'), 100);
  assert.is(cpuMillis('0.5'), 500);
  assert.is(cpuMillis(2), 2000);
  assert.is(cpuMillis('1u'), 1);
  assert.is(cpuMillis('1.0005'), 1001);
  assert.is(cpuMillis('250m'), 250);
});

test('bytes rounds up to whole bytes', () => {
  assert.is(bytes('1Ki'), 1024);
  assert.is(bytes('1.5k'), 1500);
  assert.is(bytes('1500m'), 2);
  assert.is(bytes('1m'), 1);
  assert.is(bytes('128Mi'), 134_217_728);
  assert.is(bytes('1e9'), 1_000_000_000);
  assert.is(bytes(512), 512);
  assert.is(bytes('0'), 0);
});

test('bytes and cpuMillis reject nonsense with QuantityError', () => {
  assert.throws(() => bytes('12XYZ'), (e: unknown) => e instanceof QuantityError && /12XYZ/.test((e as Error).message));
  assert.throws(() => cpuMillis('one'), (e: unknown) => e instanceof QuantityError && /one/.test((e as Error).message));
});

const formatted: [number, string][] = [
  [0, '0'], [1, '1'], [1000, '1000'], [1024, '1Ki'], [1536, '1536'], [2048, '2Ki'],
  [1_048_576, '1Mi'], [1_610_612_736, '1536Mi'], [2_147_483_648, '2Gi'], [2 ** 40, '1Ti'], [3 * 2 ** 50, '3Pi'],
  [2 ** 60, '1Ei'], [1025, '1025'], [-2048, '-2Ki'],
];
for (const [n, text] of formatted) {
  test(`formatBytes(${n}) = ${text}`, () => {
    assert.is(formatBytes(n), text);
    assert.is(bytes(text), n, 'the text parses back to the same number of bytes');
  });
}

test('formatBytes refuses fractions of a byte', () => {
  assert.throws(() => formatBytes(1.5), /1\.5/);
});

test('formatCpu writes whole cores bare and the rest in millicores', () => {
  assert.is(formatCpu(500), '500m');
  assert.is(formatCpu(2000), '2');
  assert.is(formatCpu(1500), '1500m');
  assert.is(formatCpu(0), '0');
  assert.is(formatCpu(1), '1m');
  for (const m of [0, 1, 250, 1000, 1500, 64000]) assert.is(cpuMillis(formatCpu(m)), m);
  assert.throws(() => formatCpu(0.5), /0\.5/);
});

test.run();
