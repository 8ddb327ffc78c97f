/**
 * Thirty free keys pinging every second with 4,096 grant ids and 256
 * missions each. Issue 10: every directory answer became 16 MB, an honest
 * node's RSS went 71 → 281 MB, its ping timed out, relayed calls mostly
 * failed. A ping's lists should be bounded (count and bytes).
 */
import { bounded, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawProxyClient } from '../wire.js';

const KEYS = 30;
const MISSIONS = Array.from({ length: 256 }, (_, i) => `m${String(i).padStart(3, '0')}_${'a'.repeat(59)}`);
const GRANTS = (seed: number): string[] => Array.from({ length: 4096 }, (_, i) => `${seed}-${i}-`.padEnd(128, 'G'));

export const pingFlood: Scenario = {
  name: 'ping-flood',
  title: 'pings publishing 4,096 grant ids and 256 missions',
  counts: 'pings the proxy took with the whole lists (no grant: no rate)',
  caps: { short: { timeMs: 5000, count: 300 }, full: { timeMs: 40_000, count: 3000 } },
  async attack(env) {
    const http = new RawHttp(ATTACKER, 64);
    try {
      const keys: RawProxyClient[] = [];
      for (let i = 0; i < KEYS; i++) {
        const { client } = await RawProxyClient.register(http, env.proxy, `pinger${i}@example.org`, `pinger${i}`);
        keys.push(client);
      }
      const outcomes: Record<string, number> = {};
      let accepted = 0;
      let largestAnswer = 0;
      let next = 0;
      env.started();
      const { runs, elapsedMs } = await bounded(
        env.caps,
        KEYS,
        async () => {
          const i = next++ % KEYS;
          const res = await keys[i]!.ping(
            { name: `pinger${i}`, missions: MISSIONS, grants: GRANTS(i) },
            { discardBody: true, timeoutMs: 5000 },
          );
          if (res.status === 200) accepted++;
          largestAnswer = Math.max(largestAnswer, res.bytes);
          tally(outcomes, res.status === 200 ? 'taken' : (res.code ?? res.failure ?? `HTTP ${res.status}`));
        },
        1000,
      );
      return {
        attempted: runs,
        accepted,
        allowed: null,
        detail: { outcomes, elapsedMs, largestDirectoryAnswerBytes: largestAnswer },
      };
    } finally {
      http.close();
    }
  },
};
