/**
 * A proxy in its own OS process, as it is on a real network (another
 * machine): the relay benchmark starts it and reads its URL from stdout.
 */
import { WtdProxy } from '../lib/index.js';

// An argument, if any, is the proxy's busyWaitMs (the default otherwise).
const wait = process.argv[2] === undefined ? {} : { busyWaitMs: Number(process.argv[2]) };
const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, ...wait });
process.stdout.write(`${proxy.url}\n`);
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
