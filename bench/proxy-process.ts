/**
 * A proxy in its own OS process, as it is on a real network (another
 * machine): the relay benchmark starts it and reads its URL from stdout.
 */
import { WtdProxy } from '../lib/index.js';

const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0 });
process.stdout.write(`${proxy.url}\n`);
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
