/**
 * The proxy for the abuse suite, in its own OS process, keeping its store
 * in a data directory (so that its disk can be measured), logging to the
 * console as `wtd proxy` does. Usage: proxy-process.js <data dir>.
 */
import { WtdProxy } from '../../lib/index.js';
import { serve } from './ipc.js';

const [dataDir] = process.argv.slice(2) as [string];
const proxy = await WtdProxy.start({ dataDir, port: 0, host: '127.0.0.1' });
serve({}, { url: proxy.url, id: proxy.id }, () => proxy.close());
