/**
 * Connections an attacker holds open: as many at once as it is told,
 * each doing what the scenario says once connected (nothing, dripping
 * headers, headers and no body), each opened again when the server drops
 * it, until the time or the count cap.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { sleep, type Caps } from './scenario.js';
import { ATTACKER } from './wire.js';

export interface Held {
  /** Connections opened in all. */
  opened: number;
  /** The most that were connected at one moment and had been for over a second (held, not just let in and cut). */
  peakHeld: number;
  /** The longest any one stayed open, in ms (one still open at the end counts until then). */
  longestMs: number;
  /** Connections the server closed. */
  droppedByServer: number;
  elapsedMs: number;
}

/**
 * Holds `count` connections to `url`'s host and port from 127.0.0.2;
 * `behave` runs on each once connected and may return a timer to clear.
 */
export async function holdConnections(
  url: string,
  count: number,
  caps: Caps,
  behave: (socket: Socket) => NodeJS.Timeout | undefined,
): Promise<Held> {
  const { hostname, port } = new URL(url);
  const started = Date.now();
  const end = started + caps.timeMs;
  const held: Held = { opened: 0, peakHeld: 0, longestMs: 0, droppedByServer: 0, elapsedMs: 0 };
  const open = new Map<Socket, number>();
  const sockets = new Set<Socket>();
  const countHeld = (): void => {
    const before = Date.now() - 1000;
    let n = 0;
    for (const since of open.values()) if (since < before) n++;
    held.peakHeld = Math.max(held.peakHeld, n);
  };
  const sampler = setInterval(countHeld, 50);

  const one = (): void => {
    if (Date.now() >= end || held.opened >= caps.count) return;
    held.opened++;
    const socket = connect({ host: hostname, port: Number(port), localAddress: ATTACKER });
    sockets.add(socket);
    let timer: NodeJS.Timeout | undefined;
    socket.on('connect', () => {
      open.set(socket, Date.now());
      timer = behave(socket);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      sockets.delete(socket);
      const since = open.get(socket);
      open.delete(socket);
      if (since !== undefined) held.longestMs = Math.max(held.longestMs, Date.now() - since);
      if (Date.now() < end) {
        held.droppedByServer++;
        // Opened again at once, as an attacker would (10 ms, so that a refusal is not a busy loop).
        setTimeout(one, 10);
      }
    });
  };
  for (let i = 0; i < count; i++) one();
  await sleep(Math.max(0, end - Date.now()));
  clearInterval(sampler);
  countHeld();
  for (const since of open.values()) held.longestMs = Math.max(held.longestMs, Date.now() - since);
  for (const s of sockets) s.destroy();
  held.elapsedMs = Date.now() - started;
  return held;
}

/** An IPv4 address as /proc/net/tcp spells it (little-endian hex). */
function procHex(ip: string): string {
  return ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/**
 * Counts, from the server's side, the established connections to `url`'s
 * port that come from `from`, five times a second (from /proc/net/tcp: what
 * the machine holds, whatever the attacker believes).
 */
export function connectionCensus(url: string, from: string): { stop(): number } {
  const { hostname, port } = new URL(url);
  const local = `${procHex(hostname)}:${Number(port).toString(16).toUpperCase().padStart(4, '0')}`;
  const remote = `${procHex(from)}:`;
  let peak = 0;
  const count = (): void => {
    // By peer address and port: a table read while it changes can list a socket twice.
    const peers = new Set<string>();
    try {
      for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
        const f = line.trim().split(/\s+/);
        if (f[1] === local && f[2]?.startsWith(remote) && f[3] === '01') peers.add(f[2]);
      }
    } catch {
      return;
    }
    peak = Math.max(peak, peers.size);
  };
  const timer = setInterval(count, 200);
  return {
    stop() {
      clearInterval(timer);
      count();
      return peak;
    },
  };
}
