/**
 * Ping-pong across two nodes, with pids passed both ways.
 *
 * Bob's node calls `PingPong.serve(bobsPid, rounds)` on Alice's node.
 * Alice's node spawns a pinger that sends `{ ping, replyTo }` to Bob's pid —
 * its own pid travels inside the message — and waits for each `{ pong }`
 * before the next ping. Both nodes run in this program over loopback; each
 * pid is answerable only by the node it was handed to, and only while the
 * grant stands.
 *
 * Run it: `node dist/samples/ping-pong.js`
 */
import { fileURLToPath } from 'node:url';
import { TIMEOUT, WtdExport, WtdNode, type Pid } from '../lib/index.js';

interface Ping {
  ping: number;
  replyTo: Pid;
}

export class PingPong {
  static node: WtdNode | undefined;
  static log: (line: string) => void = console.log;

  /** Starts a pinger on this node that plays `rounds` rounds with `partner`. */
  @WtdExport('pingpong')
  static serve(partner: Pid, rounds: number): string {
    const pinger = PingPong.node!.spawn(async (self) => {
      for (let i = 1; i <= rounds; i++) {
        PingPong.node!.send(partner, { ping: i, replyTo: self.pid });
        const pong = await self.receive((m) => (m as { pong?: number }).pong === i, 5000);
        if (pong === TIMEOUT) throw new Error(`no pong ${i} within 5 s`);
        PingPong.log(`alice's pinger ${String(self.pid)} got pong ${i}`);
      }
      PingPong.node!.send(partner, 'game over');
    });
    return `pinger ${String(pinger)} started`;
  }
}

export async function main(log: (line: string) => void = console.log): Promise<void> {
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
  try {
    PingPong.node = alice;
    PingPong.log = log;
    alice.load(PingPong);
    await alice.listen({ port: 0 });
    await bob.listen({ port: 0 }); // Alice's node answers Bob's pids at the address his calls carry
    const remote = await bob.connect(await alice.grant({ missions: ['pingpong'], rate: '10/s' }));

    let finished!: () => void;
    const over = new Promise<void>((resolve) => (finished = resolve));
    const ponger = bob.spawn(async (self) => {
      for (;;) {
        const msg = (await self.receive()) as Ping | 'game over';
        if (msg === 'game over') break;
        log(`bob's ponger ${String(self.pid)} got ping ${msg.ping} from ${String(msg.replyTo)}`);
        bob.send(msg.replyTo, { pong: msg.ping });
      }
      finished();
    });
    log(`bob asks alice to play: ${await remote.call<string>('PingPong', 'serve', [ponger, 3])}`);
    await over;
    log('game over');
  } finally {
    await bob.close();
    await alice.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
