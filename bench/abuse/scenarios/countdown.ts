/**
 * `countdown(pid, 4e6)` on the README's greeter under a 10/s grant, then
 * countdowns as large as the sample takes, twice as often as the grant
 * allows. Issue 10: the one call held the event loop 120 s, took 4.3 GB and
 * killed the node. The attacker here is a real node (lib's own client, on
 * 127.0.0.2), so its pid is answered however lib answers a caller's pids;
 * what it receives spends the grant's budget like a call does.
 */
import { WtdNode } from '../../../lib/index.js';
import { Greeter } from '../../../samples/greeter.js';
import { bounded, sleep, tally, withinRate, type Scenario } from '../scenario.js';
import { ATTACKER } from '../wire.js';

function codeOf(err: unknown): string {
  const e = err as { remoteCode?: string; code?: string };
  return e.remoteCode ?? e.code ?? 'error';
}

export const countdown: Scenario = {
  name: 'countdown',
  title: 'countdown(pid, 4e6) on the greeter sample, 10/s grant',
  counts: 'messages the attacker received from countdowns',
  caps: { short: { timeMs: 5000, count: 200 }, full: { timeMs: 30_000, count: 1000 } },
  async attack(env) {
    const mallory = await WtdNode.start({ name: 'mallory', dataDir: ':memory:' });
    try {
      await mallory.listen({ host: ATTACKER, port: 0 });
      const alice = await mallory.connect(env.grant, { via: 'direct' });
      let received = 0;
      const inbox = mallory.spawn(async (self) => {
        for (;;) {
          await self.receive();
          received++;
        }
      });
      const outcomes: Record<string, number> = {};
      env.started();
      const t0 = Date.now();
      const first = await alice.call('Greeter', 'countdown', [inbox, 4e6]).then(
        () => 'ok',
        (err: unknown) => codeOf(err),
      );
      const left = { timeMs: Math.max(0, env.caps.timeMs - (Date.now() - t0)), count: env.caps.count - 1 };
      const { runs } = await bounded(
        left,
        1,
        async () => {
          await alice.call('Greeter', 'countdown', [inbox, Greeter.MAX_COUNTDOWN]).then(
            () => tally(outcomes, 'ok'),
            (err: unknown) => tally(outcomes, codeOf(err)),
          );
        },
        50,
      );
      await sleep(1000); // messages still on their way
      const elapsedMs = Date.now() - t0;
      return {
        attempted: runs + 1,
        accepted: received,
        allowed: withinRate(env.rate, elapsedMs),
        detail: { firstCall: first, outcomes, received, elapsedMs },
      };
    } finally {
      await Promise.race([mallory.close(), sleep(3000)]);
    }
  },
};
