/**
 * Many 45 KB messages to a pid Alice handed out (her inbox), under a 10/s
 * grant. Issue 10: 82,000 were accepted at 1,236/s and the node died after
 * 66 s: pid messages spent no rate and mailboxes had no bound.
 */
import { bounded, tally, withinRate, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawSession, encodeArgs, grantKey, newRawKey, type Billet } from '../wire.js';

const BLOB = 'x'.repeat(45_000);

export const pidFlood: Scenario = {
  name: 'pid-flood',
  title: '45 KB pid messages to a pid Alice handed out, 10/s grant',
  counts: 'pid messages the node accepted',
  caps: { short: { timeMs: 5000, count: 3000 }, full: { timeMs: 70_000, count: 82_000 } },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const iss = newRawKey().id;
    try {
      // As any caller must: a session first, then the call that hands out the pid, then the flood, all sealed.
      const session = await RawSession.open(http, env.node, key, iss);
      const open = '/apply/Inbox/open';
      const { res, reply } = await session.call(http, open, encodeArgs([]));
      const pid = reply?.ok as Billet | undefined;
      if (res.status !== 200 || pid?.token === undefined)
        throw new Error(`Inbox.open failed: ${res.status} ${res.text}`);
      const path = `/pid/${pid.id}`;
      const outcomes: Record<string, number> = {};
      let accepted = 0;
      env.started();
      const { runs, elapsedMs } = await bounded(env.caps, 16, async (i) => {
        const body = { token: pid.token, msg: { json: { n: i, blob: BLOB } } };
        const r = await http.put(`${env.node.url}${path}`, session.seal(path, body).text);
        if (r.status === 204) accepted++;
        tally(outcomes, r.status === 204 ? 'accepted' : (r.code ?? r.failure ?? `HTTP ${r.status}`));
      });
      return {
        attempted: runs,
        accepted,
        allowed: withinRate(env.rate, elapsedMs),
        detail: { outcomes, elapsedMs, acceptedPerS: Math.round((accepted / elapsedMs) * 1000) },
      };
    } finally {
      http.close();
    }
  },
};
