// Command-line flags of the benchmarks: `--name N`.

/** The integer >= `min` (default 1) after `name` (e.g. "--seconds") on the command line, `fallback` when absent; throws on anything else. */
export function numberArg(name: string, fallback: number, min = 1): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(Number.isInteger(v) && v >= min)) throw new Error(`${name} wants ${min === 1 ? 'a positive integer' : `an integer >= ${min}`}, got ${process.argv[i + 1]}`);
  return v;
}

/** The median of several runs' figures, as every bench reports it: the upper middle one for an even count. */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}
