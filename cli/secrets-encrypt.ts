// `flotilla secrets-encrypt status|rotate|prune`: the keys Secrets are encrypted with at rest, as k3s' command of
// that name (server/secrets/secrets-encrypt.ts serves it). rotate makes a new primary key and writes every Secret
// again with it; prune drops the old keys no Secret uses any more.
import type { EncryptionStatus } from '../server/secrets/secrets-encrypt.js';
import { UsageError, stringFlag } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';
import { renderTable } from './printers.js';

/** The status as k3s prints it: a summary line, then one row per key (the active one starred). */
export function formatEncryptionStatus(s: EncryptionStatus): string {
  const rows = s.keys.map((k) => [k.primary ? ' *' : '', 'AES-GCM', k.name, String(k.secrets)]);
  return `Encryption Status: ${s.encryptionStatus}\nUnencrypted Secrets: ${s.unencryptedSecrets}\n\n${renderTable(['Active', 'Key Type', 'Name', 'Secrets'], rows)}`;
}

export const secretsEncryptCommand: CliCommand = {
  summary: 'show, rotate or prune the keys Secrets are encrypted with at rest',
  usage: 'flotilla secrets-encrypt status|rotate|prune [-o json]',
  flags: [...connectionFlags, { name: 'output', short: 'o', kind: 'string' }],
  run: async (a, io) => {
    const [sub, ...extra] = a.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const output = stringFlag(a, 'output');
    if (output !== undefined && output !== 'json') throw new UsageError(`-o takes json, not "${output}"`);
    const route = sub === 'status' ? ['GET', 'status'] : sub === 'rotate' || sub === 'prune' ? ['POST', sub] : undefined;
    if (!route) throw new UsageError(`unknown secrets-encrypt subcommand "${sub ?? ''}" (status, rotate, prune)`);
    const client = clientFor(a, io);
    try {
      const status = await client.request<EncryptionStatus>(route[0]!, `/cluster/v1/secrets-encrypt/${route[1]!}`, route[0] === 'POST' ? {} : undefined);
      io.out(output === 'json' ? `${JSON.stringify(status, null, 2)}\n` : formatEncryptionStatus(status));
      return 0;
    } finally {
      client.close();
    }
  },
};
