/**
 * Alice grants Bob one mission; Bob calls it, passes a pid and hears back;
 * Alice revokes the grant and Bob is refused. Both nodes run in this one
 * program over loopback; `npm start` tells the same story with each node in
 * its own process, through a proxy.
 *
 * Run it: `node dist/samples/two-nodes.js`
 */
import { fileURLToPath } from 'node:url';
import { WireError, WtdExport, WtdNode, type Pid } from '../lib/index.js';
import { Development } from './development.js';

/** What Alice offers under 'greetings'. */
export class Greeter {
  static node: WtdNode | undefined;

  @WtdExport('greetings')
  static hello(name: string): string {
    return `hello, ${name}`;
  }

  /** Sends `count` greetings to a pid the caller passed. */
  @WtdExport('greetings')
  static greetMany(replyTo: Pid, count: number): number {
    for (let i = 1; i <= count; i++) Greeter.node!.send(replyTo, `greeting ${i} of ${count}`);
    return count;
  }
}

export async function main(log: (line: string) => void = console.log): Promise<void> {
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
  try {
    Greeter.node = alice;
    alice.load(Greeter).load(Development);
    await alice.listen({ port: 0 });
    await bob.listen({ port: 0 });
    const grantFile = await alice.grant({ missions: ['greetings'], rate: '10/s', label: 'for bob' });
    log(`alice granted ${grantFile.missions.join(', ')} to a new key`);

    const remote = await bob.connect(grantFile);
    log(`bob calls Greeter.hello: ${await remote.call('Greeter', 'hello', ['bob'])}`);

    const heard: string[] = [];
    let done!: () => void;
    const allHeard = new Promise<void>((resolve) => (done = resolve));
    const inbox = bob.spawn(async (self) => {
      for (let i = 0; i < 2; i++) heard.push((await self.receive()) as string);
      done();
    });
    await remote.call('Greeter', 'greetMany', [inbox, 2]);
    await allHeard;
    log(`bob's process heard: ${heard.join('; ')}`);

    try {
      await remote.call('Development', 'test');
    } catch (err) {
      if (err instanceof WireError) log(`outside the grant: ${err.code} (${err.status})`);
    }
    alice.revoke(grantFile.kid);
    try {
      await remote.call('Greeter', 'hello', ['again']);
    } catch (err) {
      if (err instanceof WireError) log(`after revoking: ${err.code} (${err.status})`);
    }
  } finally {
    await bob.close();
    await alice.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
