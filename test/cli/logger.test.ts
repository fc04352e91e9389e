import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, logFormatFor, prettyLine } from '../../cli/logger.js';

test('logs are readable lines on a terminal and JSON anywhere else', () => {
  assert.is(logFormatFor(true), 'pretty');
  assert.is(logFormatFor(false), 'json');
});

test('the JSON logger writes one pino object per line; the pretty one "time LEVEL msg key=value"', () => {
  const json: string[] = [];
  createLogger({ level: 'info', format: 'json', write: (t) => json.push(t) }).warn({ node: 'pi-1', retryMs: 1000 }, 'heartbeat failed');
  assert.is(json.length, 1);
  const record = JSON.parse(json[0]!) as Record<string, unknown>;
  assert.equal({ level: record.level, msg: record.msg, node: record.node, retryMs: record.retryMs }, { level: 40, msg: 'heartbeat failed', node: 'pi-1', retryMs: 1000 });

  const pretty: string[] = [];
  const log = createLogger({ level: 'info', format: 'pretty', write: (t) => pretty.push(t) });
  log.warn({ err: new Error('connect ECONNREFUSED 127.0.0.1:6443'), node: 'pi-1', retryMs: 1000 }, 'heartbeat failed');
  log.debug('below the level');
  assert.is(pretty.length, 1);
  assert.match(pretty[0]!, /^\d\d:\d\d:\d\d\.\d{3} WARN  heartbeat failed err="connect ECONNREFUSED 127\.0\.0\.1:6443" node=pi-1 retryMs=1000\n$/);
});

test('pretty lines quote what would read ambiguously and pass through what is not a record', () => {
  const line = prettyLine(JSON.stringify({ level: 30, time: 0, pid: 1, hostname: 'h', msg: 'pod started', pod: 'web 1', labels: { app: 'web' }, empty: '' }));
  assert.match(line, / INFO  pod started pod="web 1" labels=\{"app":"web"\} empty=""\n$/);
  assert.is(prettyLine('not json\n'), 'not json\n');
});

test.run();
