/**
 * `npm start`: the whole WTD story, told in a terminal with no setup.
 *
 * Three programs start on this machine, as they would on three: a proxy
 * (`wtd proxy`), Alice's node and Bob's node, neither with an open port.
 * Alice offers a mission, grants it to Bob's key with a rate limit, Bob
 * calls it through the proxy, passes a pid and gets messages back, runs
 * into the rate limit; Alice revokes, Bob is refused; Alice's supervised
 * worker crashes and is restarted. Carol and Dave grant Bob too; his
 * mission group spreads calls over them and keeps answering when Carol's
 * machine is killed. Everything lives in a temp directory that is removed
 * at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = fileURLToPath(new URL('../../lib/cli/main.js', import.meta.url));

/** A program of the story: ask it to do something, get its answer; its events are told as they come. */
class Actor {
  readonly child: ChildProcess;
  #next = 1;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(
    readonly name: string,
    dataDir: string,
    onEvent: (event: Record<string, unknown>) => void,
  ) {
    this.child = spawn(process.execPath, [join(here, 'actor.js'), name, dataDir], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: this.child.stdout! });
    lines.on('line', (line) => {
      const msg = JSON.parse(line) as { id?: number; ok?: unknown; error?: { code: string; message: string } };
      if (msg.id === undefined) return onEvent(msg as Record<string, unknown>);
      const w = this.#waiting.get(msg.id);
      this.#waiting.delete(msg.id);
      if (msg.error !== undefined) w?.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
      else w?.resolve(msg.ok);
    });
    this.child.once('exit', () => {
      for (const w of this.#waiting.values()) w.reject(new Error(`${name}'s program exited`));
    });
  }

  do<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not answer '${op}' in 15 s`)), 15_000);
      this.#waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin!.write(`${JSON.stringify({ id, do: op, ...args })}\n`);
    });
  }
}

function answers(byNode: Record<string, number>): string {
  return Object.entries(byNode)
    .sort()
    .map(([name, n]) => `${name} answered ${n}`)
    .join(', ');
}

export async function main(say: (line: string) => void = console.log): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'wtd-story-'));
  const children: ChildProcess[] = [];
  let step = 0;
  const chapter = (text: string) => say(`\n${++step}. ${text}`);
  try {
    say('WTD: two people, two machines behind home routers, one proxy on the internet.');
    say(`(Three programs on this machine play them; their data lives in ${home} until the end.)`);

    chapter('A proxy starts: the rendezvous both machines can reach.');
    const proxy = spawn(process.execPath, [cli, 'proxy', '--port', '0', '--data-dir', join(home, 'proxy')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(proxy);
    const url = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: proxy.stdout! });
      lines.on('line', (line) => {
        const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (m) resolve(m[1]!);
      });
      proxy.once('exit', (code) => reject(new Error(`the proxy exited (${code})`)));
    });
    say(`   wtd proxy (process ${proxy.pid}) listens at ${url}; its status page is ${url}/`);

    const tell = (who: string) => (e: Record<string, unknown>) => {
      if (e.event === 'received') say(`   ${who}'s process ${String(e.by)} received ${JSON.stringify(e.message)}`);
      if (e.event === 'log') say(`   (${who}'s node reports: ${String(e.message)})`);
    };
    const alice = new Actor('alice', join(home, 'alice'), tell('Alice'));
    const bob = new Actor('bob', join(home, 'bob'), tell('Bob'));
    children.push(alice.child, bob.child);

    chapter('Alice and Bob start their nodes. Neither opens a port; both join the proxy.');
    const a = await alice.do<{ id: string; publicJwk: unknown; pid: number }>('setup', { proxy: url });
    const b = await bob.do<{ id: string; publicJwk: unknown; pid: number }>('setup', { proxy: url });
    say(`   Alice's node ${a.id} (process ${a.pid}) offers the mission 'greetings': Greeter.hello, Greeter.countdown`);
    say('   and a supervised GenServer, visitors.');
    say(`   Bob's node ${b.id} (process ${b.pid}) offers nothing; it came to call.`);

    chapter("Bob reads the proxy's directory.");
    const dir = await bob.do<{ name: string; id: string; missions: string[] }[]>('directory');
    for (const e of dir) say(`   ${e.name} (${e.id}) online, offering: ${e.missions.join(', ') || 'nothing'}`);

    chapter("Bob sends Alice his public key; she grants it 'greetings', at most 3 calls a second.");
    const { kid } = await alice.do<{ kid: string }>('grant', { to: b.publicJwk, rate: '3/s' });
    say(`   grant ${kid.slice(0, 12)} is bound to Bob's key; his private key never left his machine.`);
    const via = await bob.do('connect', { nodeKey: a.publicJwk });
    say(`   Bob connects to Alice's node (${String(via)}: she has no address to call directly).`);

    chapter('Bob calls Greeter.hello on Alice’s node, through the proxy.');
    say(`   ${JSON.stringify(await bob.do('call', { module: 'Greeter', fn: 'hello', args: ['Bob'] }))}`);
    say(`   and visits her supervised counter: visitor number ${String(await bob.do('visit'))}`);

    chapter('Bob passes one of his pids in a call; Alice’s code sends it messages back.');
    await bob.do('countdown', { n: 3 });
    say('   (Alice can send to that pid, and only to it, while Bob’s grant stands.)');

    chapter('Bob calls six times at once: the grant allows three a second.');
    await new Promise((r) => setTimeout(r, 1100)); // a full bucket
    const burst = await bob.do<{ ok?: string; code?: string; retryAfterS?: number }[]>('burst', { n: 6 });
    const ok = burst.filter((r) => r.ok !== undefined).length;
    const limited = burst.filter((r) => r.code === 'ERR_RATE_LIMITED');
    say(
      `   ${ok} answered, ${limited.length} refused with ERR_RATE_LIMITED (retry in ${limited[0]?.retryAfterS ?? '?'} s).`,
    );

    chapter('Alice revokes the grant. Bob tries again.');
    await alice.do('revoke', { kid });
    try {
      await bob.do('call', { module: 'Greeter', fn: 'hello', args: ['Bob'] });
      say('   it went through?! (it should not have)');
      throw new Error('a revoked grant was accepted');
    } catch (err) {
      say(`   refused: ${(err as { code?: string }).code}: ${(err as Error).message}`);
    }

    chapter('Alice’s supervised worker crashes. Her supervisor restarts it.');
    const crash = await alice.do<{ before: string; after: string; countBefore: number; countAfter: number }>('crash');
    say(
      `   visitors was ${crash.before} with ${crash.countBefore} visit(s); it is now ${crash.after}, counting from ${crash.countAfter}.`,
    );
    say('   Nothing else on her node noticed: that is what supervisors are for.');

    chapter('Carol and Dave start nodes too, and grant Bob their greetings. Bob makes a mission group.');
    const carol = new Actor('carol', join(home, 'carol'), tell('Carol'));
    const dave = new Actor('dave', join(home, 'dave'), tell('Dave'));
    children.push(carol.child, dave.child);
    const c = await carol.do<{ id: string; publicJwk: unknown }>('setup', { proxy: url });
    const d = await dave.do<{ id: string; publicJwk: unknown }>('setup', { proxy: url });
    await carol.do('grant', { to: b.publicJwk, rate: '1000/s' });
    await dave.do('grant', { to: b.publicJwk, rate: '1000/s' });
    const members = await bob.do<string[]>('group', { nodeKeys: [a.publicJwk, c.publicJwk, d.publicJwk] });
    const names = new Map([
      [c.id, 'Carol'],
      [d.id, 'Dave'],
      [a.id, 'Alice'],
    ]);
    say(
      `   bob.group('greetings') has ${members
        .map((m) => names.get(m) ?? m)
        .sort()
        .join(' and ')} as members;`,
    );
    say('   Alice revoked his grant, so she is not one: a group holds only nodes that grant its mission.');
    const spread = await bob.do<{ answered: Record<string, number>; failed: string[] }>('groupCalls', { n: 60 });
    say(`   60 calls of Greeter.hello, spread: ${answers(spread.answered)}.`);

    chapter("Carol's machine dies (SIGKILL) while Bob's group is calling. His calls go on.");
    const calls = bob.do<{ answered: Record<string, number>; failed: string[] }>('groupCalls', { n: 100 });
    await new Promise((r) => setTimeout(r, 20));
    carol.child.kill('SIGKILL');
    say(`   carol's process ${carol.child.pid} is killed, with calls on their way to it.`);
    const after = await calls;
    say(
      `   100 calls: ${answers(after.answered)}; failed: ${after.failed.length === 0 ? 'none' : after.failed.join(', ')}.`,
    );
    say('   Calls the proxy still held for Carol moved to Dave once the proxy saw her down; hello is');
    say('   marked idempotent, so even a call Carol may have run was safely sent to Dave again.');

    chapter('Everyone stops.');
    await bob.do('stop');
    await alice.do('stop');
    await dave.do('stop');
    say('   Bob, Alice and Dave closed their nodes; the proxy stops next.');
    say('\nThe end. Next: README.md, "Your first cluster", does this by hand in two terminals.');
  } finally {
    // A child that was killed (Carol's) has a signalCode and no exitCode: it is gone already.
    const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of running) c.kill('SIGTERM');
    await Promise.all(running.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : once(c, 'exit'))));
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`\nThe story stopped: ${(err as Error).message}`);
    process.exitCode = 1;
  });
}
