/**
 * Connections to the proxy that send a request's headers and never its
 * body. Issue 10: 1,500 of them were held for 45 s and more (the proxy's
 * request timeout was 0), and 2 of 88 fresh connections were served.
 */
import { connectionCensus, holdConnections } from '../sockets.js';
import { ATTACKER } from '../wire.js';
import type { Scenario } from '../scenario.js';

const CONNECTIONS = { short: 1000, full: 1500 };

export const headersWithoutBody: Scenario = {
  name: 'headers-without-body',
  title: 'headers without a body to the proxy',
  counts:
    'header-only connections from 127.0.0.2 the proxy held at once (peak, counted on its side; no grant, so no rate)',
  caps: { short: { timeMs: 6000, count: 20_000 }, full: { timeMs: 45_000, count: 200_000 } },
  async prepare(env) {
    const census = connectionCensus(env.proxy.url, ATTACKER);
    return { finish: async () => ({ accepted: census.stop() }), close: async () => void census.stop() };
  },
  async attack(env) {
    env.started();
    const host = new URL(env.proxy.url).host;
    const held = await holdConnections(env.proxy.url, CONNECTIONS[env.profile], env.caps, (socket) => {
      socket.write(
        `PUT /register HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/jose\r\nContent-Length: 4096\r\n\r\n`,
      );
      return undefined;
    });
    return { attempted: held.opened, accepted: held.peakHeld, allowed: null, detail: { ...held } };
  },
};
