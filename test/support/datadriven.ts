// Scenario files in the style of etcd's datadriven tests: each block is a command line, a line "----", then
// the expected output, ended by a blank line; lines starting with "#" before a command are comments. Every
// `*.txt` file of a folder becomes one uvu test that replays its blocks through `run` and compares the output.
// FLOTILLA_REWRITE=1 rewrites the expectations in place instead (review the diff!).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';

export interface Block {
  command: string;
  /** Where the command stands in its file, for error messages ("file.txt:12"). */
  line: number;
  expected: string;
}

export function parseScenario(file: string, content: string): Block[] {
  const blocks: Block[] = [];
  const lines = content.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) continue;
    if (lines[i + 1] !== '----') throw new Error(`${file}:${i + 1}: command "${line}" must be followed by a line "----"`);
    const start = i + 1;
    const out: string[] = [];
    i += 2;
    for (; i < lines.length && lines[i] !== ''; i++) out.push(lines[i]!);
    blocks.push({ command: line, line: start, expected: out.join('\n') });
  }
  return blocks;
}

/** What runs one scenario file: a fresh runner per file, one `run` call per block, answering its output. */
export type ScenarioRunner = { run(command: string): string };

/**
 * Registers one test per `*.txt` file in `dir` (a path relative to the repository root, such as
 * "test/raft/testdata"); `makeRunner` is called once per file.
 */
export function scenarioTests(test: Test, dir: string, makeRunner: () => ScenarioRunner): void {
  const dataDir = fileURLToPath(new URL(`../../../${dir}/`, import.meta.url));
  const rewrite = process.env.FLOTILLA_REWRITE === '1';
  for (const file of readdirSync(dataDir).filter((f) => f.endsWith('.txt')).sort()) {
    test(`scenario ${file}`, () => {
      const path = dataDir + file;
      const blocks = parseScenario(file, readFileSync(path, 'utf8'));
      assert.ok(blocks.length > 0, `${file} has no commands`);
      const runner = makeRunner();
      const rewritten: string[] = [];
      for (const b of blocks) {
        const actual = runner.run(b.command);
        if (rewrite) rewritten.push(`${b.command}\n----\n${actual ? `${actual}\n` : ''}`);
        else assert.fixture(actual, b.expected, `${file}:${b.line}: ${b.command}`);
      }
      if (rewrite) {
        const header = readFileSync(path, 'utf8').split('\n').filter((l, i, all) => l.startsWith('#') && all.slice(0, i).every((x) => x.startsWith('#'))).join('\n');
        writeFileSync(path, (header ? `${header}\n\n` : '') + rewritten.join('\n'));
      }
    });
  }
}
