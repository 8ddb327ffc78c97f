/**
 * TCP connections to the node that send nothing, reopened when dropped (no
 * grant needed). Issue 10: with 256 of them the node served 0 of 59 fresh
 * connections for 30 s. Honest callers must still get in.
 */
import { connectionCensus, holdConnections } from '../sockets.js';
import { ATTACKER } from '../wire.js';
import type { Scenario } from '../scenario.js';

const CONNECTIONS = { short: 300, full: 1000 };

export const silentConnections: Scenario = {
  name: 'silent-connections',
  title: 'silent TCP connections to the node, held and reopened',
  counts: 'silent connections from 127.0.0.2 the node held at once (peak, counted on its side; no grant, so no rate)',
  caps: { short: { timeMs: 6000, count: 20_000 }, full: { timeMs: 40_000, count: 200_000 } },
  async prepare(env) {
    const census = connectionCensus(env.node.url, ATTACKER);
    return { finish: async () => ({ accepted: census.stop() }), close: async () => void census.stop() };
  },
  async attack(env) {
    env.started();
    const held = await holdConnections(env.node.url, CONNECTIONS[env.profile], env.caps, () => undefined);
    return { attempted: held.opened, accepted: held.peakHeld, allowed: null, detail: { ...held } };
  },
};
