// Command-line flags of the benchmarks: `--name N`.

/** The positive integer after `name` (e.g. "--seconds") on the command line, `fallback` when absent; throws on anything else. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(Number.isInteger(v) && v > 0)) throw new Error(`${name} wants a positive integer, got ${process.argv[i + 1]}`);
  return v;
}
