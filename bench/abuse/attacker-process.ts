/**
 * The attacker, in a process of its own, so that its work does not share
 * an event loop with the honest callers it is measured against. Every
 * socket it opens comes from 127.0.0.2: the raw ones name that address, and
 * lib's HTTP client (a scenario that attacks through a real node) is made to
 * as well, here and only here. The scenario and its targets come over IPC.
 */
import { Agent } from 'node:http';
import type { AttackEnv } from './scenario.js';
import { ATTACKER } from './wire.js';

type CreateConnection = (this: Agent, options: Record<string, unknown>, callback?: unknown) => unknown;
const proto = Agent.prototype as unknown as { createConnection: CreateConnection };
const create = proto.createConnection;
proto.createConnection = function (options, callback) {
  return create.call(this, { ...options, localAddress: ATTACKER }, callback);
};

const { SCENARIOS } = await import('./scenarios/index.js');

process.on('message', (raw) => {
  const msg = raw as { type: string; name: string; env: Omit<AttackEnv, 'started'> };
  if (msg.type !== 'attack') return;
  const scenario = SCENARIOS.find((s) => s.name === msg.name);
  if (scenario === undefined) {
    process.send?.({ type: 'failed', message: `no scenario ${msg.name}` });
    return;
  }
  let told = false;
  const env: AttackEnv = {
    ...msg.env,
    started: () => {
      if (!told) process.send?.({ type: 'started' });
      told = true;
    },
  };
  scenario.attack(env).then(
    (report) => process.send?.({ type: 'report', report }),
    (err: unknown) => process.send?.({ type: 'failed', message: (err as Error).stack ?? String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', pid: process.pid });
