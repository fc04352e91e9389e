#!/usr/bin/env node
// Records this machine as a hardware fixture: the RawHardware that hardware/probe.ts collects (exactly as
// systeminformation and nvidia-smi answer) plus the files the preflight checks read. This is how
// hardware/fixtures/h100-server*.json were made; run it on a new kind of machine to add a fixture.
// Usage (after npm run build): node scripts/record-hardware.mjs OUT_DIR NAME
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeHardware } from '../dist/hardware/probe.js';

const [outDir, name] = process.argv.slice(2);
if (!outDir || !name || !/^[a-z0-9-]+$/.test(name)) {
  console.error('usage: node scripts/record-hardware.mjs OUT_DIR NAME   (NAME: lowercase letters, digits, -)');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(await probeHardware(), null, 2)}\n`);
const sources = ['/proc/cgroups', '/sys/fs/cgroup/cgroup.controllers', '/proc/cmdline', '/etc/os-release',
  '/run/systemd/timesync/synchronized', '/proc/device-tree/model', '/boot/firmware/cmdline.txt', '/boot/cmdline.txt'];
const preflight = Object.fromEntries(sources.map((f) => {
  try { return [f, readFileSync(f, 'utf8')]; } catch { return [f, null]; }
}));
writeFileSync(join(outDir, `${name}.preflight-sources.json`), `${JSON.stringify(preflight, null, 2)}\n`);
console.log(`recorded ${join(outDir, `${name}.json`)} and ${name}.preflight-sources.json`);
