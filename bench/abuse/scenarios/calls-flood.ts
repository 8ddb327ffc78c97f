/**
 * `PUT /calls` of 100 calls each, eight at once, as fast as the answers
 * come, under a 10/s grant: the node must run no more of them than the
 * grant's rate allows, refuse the rest call by call (`ERR_RATE_LIMITED`),
 * hold no more than a grant may run and queue, and keep answering honest
 * callers meanwhile.
 */
import { BATCH_MAX_ITEMS } from '../../../lib/transport/batch.js';
import { bounded, tally, withinRate, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawSession, encodeArgs, grantKey, newRawKey } from '../wire.js';

export const callsFlood: Scenario = {
  name: 'calls-flood',
  title: `PUT /calls of ${BATCH_MAX_ITEMS} calls each, 8 at once, 10/s grant`,
  counts: 'calls the node ran',
  caps: { short: { timeMs: 3000, count: 200 }, full: { timeMs: 15_000, count: 2000 } },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const iss = newRawKey().id;
    const outcomes: Record<string, number> = {};
    let ran = 0;
    let calls = 0;
    try {
      const session = await RawSession.open(http, env.node, key, iss);
      env.started();
      const { runs, elapsedMs } = await bounded(env.caps, 8, async () => {
        const deadline = Date.now() + 5000;
        const items = Array.from({ length: BATCH_MAX_ITEMS }, (_, i) => ({
          path: '/apply/Greeter/hello',
          body: encodeArgs([`mallory-${i}`]),
          timeout: 5000,
          deadline,
        }));
        calls += items.length;
        const { res, answers } = await session.calls(http, items);
        if (answers === undefined) {
          tally(outcomes, res.code ?? `HTTP ${res.status}${res.failure === undefined ? '' : ` ${res.failure}`}`);
          return;
        }
        for (const a of answers) {
          if (a.status === 200) ran++;
          tally(outcomes, a.status === 200 ? 'ran' : (a.code ?? `HTTP ${a.status}`));
        }
      });
      return {
        attempted: calls,
        accepted: ran,
        allowed: withinRate(env.rate, elapsedMs),
        detail: { requests: runs, outcomes, elapsedMs },
      };
    } finally {
      http.close();
    }
  },
};
