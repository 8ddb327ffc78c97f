/**
 * A second key registering an e-mail already registered (Alice's), as
 * "palice". Issue 10: it was listed beside the real one. One key per
 * e-mail: the second is refused, or listed flagged as unverified.
 */
import { HONEST, RawHttp, ATTACKER, RawProxyClient } from '../wire.js';
import { bounded, tally, type Scenario } from '../scenario.js';

/** Whether a directory entry says it is not verified (a field such as `verified: false` or `unverified: true`). */
function flaggedUnverified(entry: Record<string, unknown>): boolean {
  return Object.entries(entry).some(([k, v]) =>
    /unverified/i.test(k)
      ? v === true
      : /verified/i.test(k)
        ? v === false
        : typeof v === 'string' && /unverified/i.test(v),
  );
}

export const secondEmail: Scenario = {
  name: 'second-email',
  title: 'a second key registering an e-mail already registered',
  counts: 'impostors listed as if they were the e-mail’s owner (none may)',
  caps: { short: { timeMs: 2000, count: 10 }, full: { timeMs: 5000, count: 20 } },
  async prepare(env) {
    return {
      async finish(report) {
        const http = new RawHttp(HONEST);
        const res = await http.request(`${env.proxy.url}/status.json`, { method: 'GET' });
        http.close();
        const nodes = (JSON.parse(res.text) as { nodes: Record<string, unknown>[] }).nodes;
        const impostor = nodes.find((n) => n.id === report.detail.impostor);
        const passes = report.detail.registered === true && impostor !== undefined && !flaggedUnverified(impostor);
        return { accepted: passes ? 1 : 0, allowed: 0, detail: { listedAs: impostor ?? null } };
      },
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const outcomes: Record<string, number> = {};
    try {
      env.started();
      const { client, res } = await RawProxyClient.register(http, env.proxy, env.aliceEmail, 'palice');
      tally(outcomes, `register ${res.status === 200 ? 'taken' : (res.code ?? res.status)}`);
      const { runs, elapsedMs } = await bounded(
        env.caps,
        1,
        async () => {
          const r = await client.ping({ name: 'palice', missions: ['greetings'] });
          tally(outcomes, `ping ${r.status === 200 ? 'taken' : (r.code ?? r.status)}`);
        },
        500,
      );
      return {
        attempted: 1 + runs,
        accepted: res.status === 200 ? 1 : 0,
        allowed: null,
        detail: { outcomes, elapsedMs, impostor: client.id, registered: res.status === 200 },
      };
    } finally {
      http.close();
    }
  },
};
