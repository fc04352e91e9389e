// The `flotilla` command of the build folder this file was compiled into, for lab hosts:
//   node flotilla-cli.js ARGS...
// bin/flotilla.js runs dist/ only; suites built into another folder (dist-NAME) must run their own build.
import { main } from '../../cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`); process.exitCode = 1; },
);
