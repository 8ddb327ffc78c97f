/**
 * Alice's node for the abuse suite, in its own OS process as on her
 * Raspberry Pi: the README's greeter sample and an inbox she hands out,
 * listening on loopback and joined to the proxy. Grants are made on the
 * runner's request over IPC, and so is joining the proxy (the two processes
 * start side by side). Usage: node-process.js <data dir>.
 */
import { WtdNode } from '../../lib/index.js';
import { Greeter, Visitors, start } from '../../samples/greeter.js';
import { Inbox } from './target.js';
import { serve } from './ipc.js';

const [dataDir] = process.argv.slice(2) as [string];
const node = await WtdNode.start({ name: 'alice', dataDir });
node.load(Greeter).load(Visitors).load(Inbox);
await start(node);
Inbox.start(node);
await node.listen({ host: '127.0.0.1', port: 0 });

const gc = (globalThis as { gc?: () => void }).gc;
serve(
  {
    join: (m) => node.joinProxy({ url: String(m.url), email: String(m.email) }),
    grant: (m) => node.grant({ missions: m.missions as string[], rate: m.rate as never, label: String(m.label) }),
    /** What a grantee must not be able to take away: the greeter's servers and its missions. */
    state: () => ({
      missions: node.missions.describe(),
      visitors: node.whereis('visitors') !== undefined,
      supervisor: node.whereis('greeter_sup') !== undefined,
      inboxTaken: Inbox.taken,
    }),
    /** Memory after a full collection: what is retained, not what is garbage yet. */
    heap: () => {
      gc?.();
      return process.memoryUsage();
    },
  },
  { url: node.address, id: node.id },
  () => node.close(),
);
