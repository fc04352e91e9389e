// The flotilla command of the build these suites were compiled into. bin/flotilla.js always runs dist/, which
// may be another build than the suite's own (each engineer builds into their own folder); spawning this file
// keeps the processes under test and the suite on the same code.
import { main } from '../../cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`flotilla: ${err instanceof Error ? err.message : String(err)}`); process.exitCode = 1; },
);
