/**
 * One of the two people in `npm start`'s story, as its own program (its own
 * OS process, as on its own machine): `node actor.js alice|bob <dataDir>`.
 * The narrator sends it one JSON command per line on stdin; it answers one
 * JSON line per command on stdout, and reports what its processes see as
 * `{ event }` lines.
 */
import { createInterface } from 'node:readline';
import type { JWK } from 'jose';
import { GenServer, WtdNode, type MissionGroup, type Pid, type RemoteNode, type WtdError } from '../../lib/index.js';
import { Greeter, Visitors, start as startGreeter } from '../greeter.js';

const [who, dataDir] = process.argv.slice(2) as ['alice' | 'bob' | 'carol' | 'dave', string];
let node: WtdNode;
let alice: RemoteNode | undefined;
let friends: MissionGroup | undefined;

function emit(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const logger = {
  // Crash reports become one event line for the narrator to tell.
  error: (message: string) => emit({ event: 'log', message: message.split('\n')[0] }),
};

type Handler = (args: Record<string, unknown>) => Promise<unknown>;

const handlers: Record<string, Handler> = {
  async setup({ proxy }) {
    node = await WtdNode.start({ name: who, dataDir, logger });
    if (who === 'alice') {
      node.load(Greeter).load(Visitors);
      await startGreeter(node);
    } else if (who !== 'bob') {
      node.load(Greeter);
      Greeter.node = node;
    }
    await node.joinProxy({ url: String(proxy), email: `${who}@example.org`, pingIntervalMs: 250 });
    return { id: node.id, publicJwk: node.publicJwk, pid: process.pid };
  },

  // ---- Alice, Carol and Dave
  async grant({ to, rate }) {
    const record = await node.grant({ missions: ['greetings'], rate: String(rate), to: to as JWK, label: 'bob' });
    return { kid: record.kid };
  },
  async revoke({ kid }) {
    return node.revoke(String(kid));
  },
  async crash() {
    const before = node.whereis('visitors')!;
    const count = await GenServer.call(before, 'count');
    // A crash from outside: an exit signal, as `exit(Pid, Reason)` sends in Erlang.
    node.exit(before, new Error('the visitor book fell on the floor'));
    let after = node.whereis('visitors');
    while (after === undefined || after === before) {
      await new Promise((r) => setTimeout(r, 10));
      after = node.whereis('visitors');
    }
    return {
      before: String(before),
      after: String(after),
      countBefore: count,
      countAfter: await GenServer.call(after, 'count'),
    };
  },

  // ---- Bob
  async directory() {
    const until = Date.now() + 5000;
    while (!node.directory().some((e) => e.name === 'alice') && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return node.directory().map((e) => ({ name: e.name, id: e.id, missions: e.missions, address: e.address }));
  },
  async connect({ nodeKey }) {
    alice = await node.connect({ nodeKey: nodeKey as JWK });
    return alice.via;
  },
  async call({ module, fn, args }) {
    return alice!.call(String(module), String(fn), args as unknown[]);
  },
  async visit() {
    return alice!.genServer('greetings', 'visitors').call('visit');
  },
  async countdown({ n }) {
    const got: unknown[] = [];
    const done = new Promise<void>((resolve) => {
      const inbox: Pid = node.spawn(async (self) => {
        for (let i = 0; i < Number(n); i++) {
          const msg = await self.receive();
          got.push(msg);
          emit({ event: 'received', by: String(self.pid), message: msg });
        }
        resolve();
      });
      void alice!.call('Greeter', 'countdown', [inbox, n]).then((r) => emit({ event: 'returned', result: r }));
    });
    await done;
    return got;
  },
  async burst({ n }) {
    const results = await Promise.allSettled(
      Array.from({ length: Number(n) }, () => alice!.call('Greeter', 'hello', ['Bob'])),
    );
    return results.map((r) =>
      r.status === 'fulfilled'
        ? { ok: r.value }
        : { code: (r.reason as WtdError).code, retryAfterS: (r.reason as { retryAfterS?: number }).retryAfterS },
    );
  },

  /** Bob's group of every node that granted him 'greetings' and is on the proxy. */
  async group({ nodeKeys }) {
    for (const nodeKey of nodeKeys as JWK[]) await node.connect({ nodeKey });
    friends = node.group('greetings');
    friends.on('member_down', (m) => emit({ event: 'member_down', node: m.nodeId }));
    // Each node it connected to is probed once: a member only if it grants 'greetings'.
    await friends.ready();
    return friends.members().map((m) => m.nodeId);
  },
  /** `n` calls of Greeter.hello on the group, 8 at a time: who answered, and what failed. */
  async groupCalls({ n }) {
    const answered = new Map<string, number>();
    const failed: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next++ < Number(n)) {
          try {
            const text = await friends!.call<string>('Greeter', 'hello', ['Bob'], { timeout: 8000 });
            const by = /from (\w+)/.exec(text)?.[1] ?? '?';
            answered.set(by, (answered.get(by) ?? 0) + 1);
          } catch (err) {
            failed.push((err as WtdError).code);
          }
        }
      }),
    );
    return { answered: Object.fromEntries(answered), failed };
  },

  async stop() {
    await node.close();
    setImmediate(() => process.exit(0));
    return true;
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  const { id, do: op, ...args } = JSON.parse(line) as { id: number; do: string } & Record<string, unknown>;
  try {
    emit({ id, ok: (await handlers[op]!(args)) ?? null });
  } catch (err) {
    emit({ id, error: { code: (err as WtdError).code ?? 'ERR', message: (err as Error).message } });
  }
}
