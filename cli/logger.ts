// The server's and the agent's logger (pino): JSON lines, one object each, for journald, files and log collectors; on a terminal,
// one readable line per record instead ("12:00:01.250 WARN  heartbeat failed err=..."). The formatter is ours
// (pino-pretty is not a dependency): pino writes each record to any object with write(), so it sits there.
import pino, { type Logger } from 'pino';

export type LogFormat = 'pretty' | 'json';

/** Readable lines on a terminal, JSON anywhere else. */
export function logFormatFor(isTTY: boolean): LogFormat {
  return isTTY ? 'pretty' : 'json';
}

/** A logger at `level` that writes each record, formatted as `format` says, to `write`. */
export function createLogger(opts: { level: string; format: LogFormat; write: (text: string) => void }): Logger {
  const write = opts.format === 'json' ? opts.write : (json: string) => opts.write(prettyLine(json));
  return pino({ level: opts.level }, { write });
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** One pino JSON record as "HH:MM:SS.mmm LEVEL msg key=value ...", local time; pid and hostname left out. */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { level, time, msg, pid: _pid, hostname: _hostname, ...fields } = record;
  const at = typeof time === 'number' ? clockTime(new Date(time)) : '';
  const name = (typeof level === 'number' ? LEVEL_NAMES[level] : undefined) ?? String(level);
  const rest = Object.entries(fields).map(([k, v]) => ` ${k}=${fieldText(v)}`).join('');
  return `${at} ${name.padEnd(5)} ${typeof msg === 'string' ? msg : ''}${rest}\n`;
}

function clockTime(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** Bare when that reads unambiguously, else JSON; an error (pino's serialised {type, message, stack}) by its message. */
function fieldText(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  if (v !== null && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string' && typeof (v as { stack?: unknown }).stack === 'string') {
    return JSON.stringify((v as { message: string }).message);
  }
  return JSON.stringify(v);
}
