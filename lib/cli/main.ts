#!/usr/bin/env node
import '../missions/reflect-metadata.js';
import { EXIT, runWtd } from './wtd.js';

// Stack traces of the user's modules point at their TypeScript when they were compiled with source maps.
process.setSourceMapsEnabled(true);

// The first Ctrl-C (or SIGTERM) asks the command to stop: a node closes, a call ends at once
// saying whether it may have run. A second one does not wait for that.
const stop = new Promise<void>((resolve) => {
  let asked = false;
  const onSignal = (): void => {
    if (asked) process.exit(EXIT.interrupted);
    asked = true;
    resolve();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
});
const code = await runWtd(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  stop,
  env: process.env,
});
process.exit(code);
