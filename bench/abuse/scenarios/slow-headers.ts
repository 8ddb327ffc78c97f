/**
 * Connections to the node that send their headers a few bytes a second and
 * never finish them (slowloris), reopened when dropped. Honest callers must
 * still get in.
 */
import { connectionCensus, holdConnections } from '../sockets.js';
import { ATTACKER } from '../wire.js';
import type { Scenario } from '../scenario.js';

const CONNECTIONS = { short: 300, full: 1000 };

export const slowHeaders: Scenario = {
  name: 'slow-headers',
  title: 'slow headers to the node (a header line a second, never done)',
  counts:
    'slow-header connections from 127.0.0.2 the node held at once (peak, counted on its side; no grant, so no rate)',
  caps: { short: { timeMs: 6000, count: 20_000 }, full: { timeMs: 40_000, count: 200_000 } },
  async prepare(env) {
    const census = connectionCensus(env.node.url, ATTACKER);
    return { finish: async () => ({ accepted: census.stop() }), close: async () => void census.stop() };
  },
  async attack(env) {
    env.started();
    const host = new URL(env.node.url).host;
    const held = await holdConnections(env.node.url, CONNECTIONS[env.profile], env.caps, (socket) => {
      socket.write(`PUT /apply/Greeter/hello HTTP/1.1\r\nHost: ${host}\r\n`);
      let i = 0;
      return setInterval(() => socket.write(`X-Slow-${i++}: a\r\n`), 1000);
    });
    return { attempted: held.opened, accepted: held.peakHeld, allowed: null, detail: { ...held } };
  },
};
