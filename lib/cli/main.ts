#!/usr/bin/env node
import 'reflect-metadata';
import { runWtd } from './wtd.js';

const stop = new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
const code = await runWtd(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  stop,
  env: process.env,
});
process.exit(code);
