/**
 * Casts to the greeter's `Visitors`, a GenServer with no `handleCast`.
 * Issue 10: two casts and its supervisor hit its restart intensity and shut
 * down; the mission was gone. Afterwards the visitor counter must still
 * run, under its supervisor, and answer.
 */
import { bounded, sleep, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawSession, encodeArgs, grantKey, newRawKey } from '../wire.js';

interface NodeState {
  missions: Record<string, { functions: string[]; behaviours: string[] }>;
  visitors: boolean;
  supervisor: boolean;
}

export const castNoHandler: Scenario = {
  name: 'cast-no-handler',
  title: 'casts to a behaviour without handleCast (Visitors)',
  counts: 'casts the node accepted',
  caps: { short: { timeMs: 2000, count: 5 }, full: { timeMs: 5000, count: 20 } },
  async prepare(env) {
    return {
      async finish() {
        await sleep(1000); // a crash and its restart, had there been one
        const state = await env.node.child.request<NodeState>('state');
        const answers = await env.honest.direct
          .genServer('greetings', 'visitors')
          .call('count')
          .then(
            (n) => typeof n === 'number',
            () => false,
          );
        return {
          detail: { state },
          checks: [
            { name: 'Visitors still running', ok: state.visitors && state.supervisor },
            {
              name: 'mission still offers Visitors',
              ok: state.missions.greetings?.behaviours.includes('Visitors') ?? false,
            },
            { name: 'Visitors still answers', ok: answers },
          ],
        };
      },
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const iss = newRawKey().id;
    const path = '/behaviour/greetings/visitors/cast';
    const outcomes: Record<string, number> = {};
    let accepted = 0;
    try {
      const session = await RawSession.open(http, env.node, key, iss);
      env.started();
      const { runs, elapsedMs } = await bounded(
        env.caps,
        1,
        async () => {
          const res = await http.put(`${env.node.url}${path}`, session.seal(path, encodeArgs(['visit'])).text);
          if (res.status >= 200 && res.status < 300) accepted++;
          tally(outcomes, res.status < 300 ? `HTTP ${res.status}` : (res.code ?? `HTTP ${res.status}`));
        },
        200,
      );
      return { attempted: runs, accepted, allowed: null, detail: { outcomes, elapsedMs } };
    } finally {
      http.close();
    }
  },
};
