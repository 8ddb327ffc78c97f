/**
 * Many free registrations from one address. Issue 10: 100,000 were all
 * accepted in 33 s, +485 MB of proxy RSS, and `/status.json` (fetched by
 * the status page every second) grew to 15 MB and 200 ms a fetch.
 */
import { bounded, tally, type Scenario } from '../scenario.js';
import { ATTACKER, HONEST, RawHttp, RawProxyClient } from '../wire.js';

export const freeRegistrations: Scenario = {
  name: 'free-registrations',
  title: 'many free registrations from one address',
  counts: 'registrations the proxy accepted (no grant: no rate)',
  caps: { short: { timeMs: 10_000, count: 2000 }, full: { timeMs: 120_000, count: 100_000 } },
  async prepare(env) {
    return {
      async finish() {
        const http = new RawHttp(HONEST);
        const res = await http.request(`${env.proxy.url}/status.json`, {
          method: 'GET',
          discardBody: true,
          timeoutMs: 10_000,
        });
        http.close();
        return { detail: { statusJsonBytes: res.bytes, statusJsonMs: Math.round(res.ms) } };
      },
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER, 64);
    const outcomes: Record<string, number> = {};
    let accepted = 0;
    try {
      env.started();
      const { runs, elapsedMs } = await bounded(env.caps, 16, async (i) => {
        const { res } = await RawProxyClient.register(http, env.proxy, `free${i}@example.org`, `free${i}`);
        if (res.status === 200) accepted++;
        tally(outcomes, res.status === 200 ? 'registered' : (res.code ?? res.failure ?? `HTTP ${res.status}`));
      });
      return { attempted: runs, accepted, allowed: null, detail: { outcomes, elapsedMs } };
    } finally {
      http.close();
    }
  },
};
