import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { EXIT } from '../../lib/cli/wtd.js';
import { scratch, service, wtd, type Service } from '../fixtures/cli.js';

const GREETER = new URL('../../samples/greeter.js', import.meta.url).pathname;

describe('wtd: the command line', function () {
  this.timeout(20_000);
  let home: string;
  let alice: string[];
  const running: Service[] = [];
  beforeEach(() => {
    home = scratch();
    alice = ['--data-dir', join(home, 'alice')];
  });
  afterEach(async () => {
    for (const s of running.splice(0)) await s.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('lists its commands, gives --help for each, and says what is wrong with a command line', async () => {
    const none = await wtd([]);
    expect(none.code).to.equal(EXIT.usage);
    for (const c of [
      'init',
      'whoami',
      'start',
      'proxy',
      'grant',
      'grants',
      'revoke',
      'directory',
      'call',
      'observer',
      'missions',
      'new',
    ]) {
      expect(none.out).to.include(`  ${c} `);
      const help = await wtd([c, '--help']);
      expect(help.code).to.equal(EXIT.ok);
      expect(help.out).to.match(new RegExp(`^usage: wtd ${c}`));
    }
    const unknown = await wtd(['frobnicate']);
    expect([unknown.code, unknown.err]).to.deep.equal([
      EXIT.usage,
      "wtd: there is no command 'frobnicate' [ERR_USAGE]\n  'wtd --help' lists them",
    ]);
    expect((await wtd(['strat'])).err).to.include("there is no command 'strat' (did you mean start?)");
    // An unknown flag is named, with the ones the command takes (and the closest).
    const flag = await wtd(['grants', '--colour']);
    expect(flag.code).to.equal(EXIT.usage);
    expect(flag.err.split('\n')).to.deep.equal([
      'wtd grants: there is no flag --colour [ERR_USAGE]',
      '  wtd grants takes --json, --debug, --help/-h, --data-dir <value>',
      'usage: wtd grants [--json]',
    ]);
    expect((await wtd(['grants', '--jsn'])).err).to.include('there is no flag --jsn (did you mean --json?)');
    const json = await wtd(['grants', '--colour', '--json']);
    expect([json.code, json.err]).to.deep.equal([EXIT.usage, '']);
    expect(JSON.parse(json.out)).to.deep.equal({
      error: {
        code: 'ERR_USAGE',
        message: 'there is no flag --colour',
        hint: 'wtd grants takes --json, --debug, --help/-h, --data-dir <value>',
        exit: EXIT.usage,
      },
    });
    // A flag without its value, a value for a flag that takes none, an argument too many.
    for (const args of [
      ['grants', '--data-dir'],
      ['grants', '--json=yes'],
      ['grants', 'extra'],
      ['revoke'],
      ['start'],
      ['grant', '--missions', '--rate', '1/s'],
    ]) {
      const res = await wtd([...args, '--json']);
      expect([res.code, (JSON.parse(res.out) as { error: { code: string } }).error.code], args.join(' ')).to.deep.equal(
        [EXIT.usage, 'ERR_USAGE'],
      );
    }
    expect((await wtd(['--version'])).out).to.match(/^\d+\.\d+\.\d+$/);
    expect((await wtd(['help', 'grant'])).out).to.match(/^usage: wtd grant/);
  });

  it('init makes the identity once; whoami prints the key to send; nothing works before init', async () => {
    const before = await wtd(['whoami', ...alice]);
    expect(before.code).to.equal(EXIT.notFound);
    expect(before.err).to.include("run 'wtd init --name <name>' first");
    const missing = await wtd(['whoami', '--json', ...alice]);
    expect(JSON.parse(missing.out).error).to.include({ code: 'ERR_MISSING', exit: EXIT.notFound });
    const made = await wtd(['init', '--name', 'alice', '--json', ...alice]);
    expect(made.code).to.equal(EXIT.ok);
    const facts = JSON.parse(made.out) as { name: string; id: string; created: boolean };
    expect([facts.name, facts.created]).to.deep.equal(['alice', true]);
    expect(statSync(join(home, 'alice', 'wtd.db')).mode & 0o777).to.equal(0o600);
    const again = await wtd(['init', '--name', 'other', ...alice]);
    expect(again.out).to.include(`A node is already here: alice (${facts.id})`);
    const who = await wtd(['whoami', '--out', join(home, 'alice.card'), ...alice]);
    expect(who.out).to.include(`alice (${facts.id})`);
    const card = JSON.parse(readFileSync(join(home, 'alice.card'), 'utf8')) as {
      wtd: string;
      name: string;
      id: string;
      address: string | null;
      proxy: string | null;
      publicJwk: { d?: string; x: string };
    };
    expect([card.wtd, card.name, card.id, card.address, card.proxy]).to.deep.equal([
      'card',
      'alice',
      facts.id,
      null,
      null,
    ]);
    expect(card.publicJwk.x).to.be.a('string');
    expect(card.publicJwk.d).to.equal(undefined);
    // The environment chooses the data directory too.
    const viaEnv = await wtd(['whoami', '--json'], { WTD_DATA: join(home, 'alice') });
    expect((JSON.parse(viaEnv.out) as { id: string }).id).to.equal(facts.id);
    const badName = await wtd(['init', '--name', 'a b', '--data-dir', join(home, 'x')]);
    expect(badName.code).to.equal(EXIT.usage);
    expect(existsSync(join(home, 'x', 'node.json'))).to.equal(false);
  });

  it('start serves a module; grant, call, grants and revoke work on the running node', async () => {
    await wtd(['init', '--name', 'alice', ...alice]);
    // A grant file before the node ever ran would not say where it is: refused, and nothing granted.
    const early = await wtd([
      'grant',
      '--missions',
      'greetings',
      '--rate',
      '10/s',
      '--out',
      join(home, 'x.grant'),
      ...alice,
    ]);
    expect(early.code).to.equal(EXIT.usage);
    expect(existsSync(join(home, 'x.grant'))).to.equal(false);
    expect((await wtd(['grants', '--json', ...alice])).out).to.equal('[]');

    const node = await service(['start', GREETER, '--port', '0', ...alice], 'is running');
    running.push(node);
    expect(node.out.join('\n')).to.include(
      'greetings: Greeter/hello/1, Greeter/countdown/2, Visitors (gen_server: call/1)',
    );
    const grantFile = join(home, 'bob.grant');
    const granted = await wtd([
      'grant',
      '--missions',
      'greetings',
      '--rate',
      '100/min',
      '--label',
      'bob',
      '--out',
      grantFile,
      ...alice,
    ]);
    expect(granted.code).to.equal(EXIT.ok);
    expect(statSync(grantFile).mode & 0o777).to.equal(0o600);

    const hello = await wtd(['call', grantFile, 'Greeter', 'hello', '["bob"]']);
    expect([hello.code, hello.out]).to.deep.equal([EXIT.ok, '"hello, bob, from alice"']);
    const secret = await wtd(['call', grantFile, 'Greeter', 'secret']);
    expect(secret.code).to.equal(EXIT.failed);
    // The reason once, then what the grant covers.
    expect(secret.err.split('\n')).to.deep.equal([
      'wtd call: this grant does not cover Greeter/secret [ERR_MISSION_NOT_GRANTED]',
      '  it covers Greeter/hello, Greeter/countdown, Visitors (gen_server)',
    ]);
    const typo = await wtd(['call', grantFile, 'Greeter', 'helo', '["bob"]', '--json']);
    expect(JSON.parse(typo.out).error.message).to.equal(
      'this grant does not cover Greeter/helo (did you mean Greeter/hello?)',
    );
    // Too few arguments is refused before the function runs, not answered 'hello, undefined'.
    const tooFew = await wtd(['call', grantFile, 'Greeter', 'hello', '--json']);
    expect([tooFew.code, JSON.parse(tooFew.out).error.code]).to.deep.equal([EXIT.failed, 'ERR_BAD_ARITY']);
    const badArgs = await wtd(['call', grantFile, 'Greeter', 'hello', '{"name":"bob"}']);
    expect(badArgs.code).to.equal(EXIT.usage);
    expect((await wtd(['call', join(home, 'none.grant'), 'Greeter', 'hello'])).code).to.equal(EXIT.notFound);

    const list = JSON.parse((await wtd(['grants', '--json', ...alice])).out) as {
      label: string;
      uses: number;
      state: string;
    }[];
    expect(list.map((g) => [g.label, g.uses, g.state])).to.deep.equal([['bob', 1, 'active']]); // refusals count no use
    expect((await wtd(['grants', ...alice])).out).to.match(/bob\s+greetings\s+100\/min\s+1\s/);

    expect((await wtd(['revoke', 'nobody', ...alice])).code).to.equal(EXIT.notFound);
    const revoked = await wtd(['revoke', 'bob', ...alice]);
    expect(revoked.out).to.match(/^Revoked grant .* \(bob\)\.$/);
    // The running node sees a revocation made by another program at once.
    const refused = await wtd(['call', grantFile, 'Greeter', 'hello', '["bob"]']);
    expect(refused.code).to.equal(EXIT.failed);
    expect(refused.err).to.include('[ERR_GRANT_REVOKED]');
    expect(refused.err).to.not.include('    at ');
    const debug = await wtd(['call', grantFile, 'Greeter', 'hello', '["bob"]', '--debug']);
    expect(debug.err).to.include('    at ');
    expect(await node.stop()).to.equal(EXIT.ok);
    running.pop();
    const down = await wtd(['call', grantFile, 'Greeter', 'hello', '["bob"]']);
    expect(down.code).to.equal(EXIT.unreachable);
    expect(down.err).to.include('[ERR_NODE_DOWN]');
  });

  it('grants to a friend’s card; bad rates, durations and cards are usage errors', async () => {
    await wtd(['init', '--name', 'alice', ...alice]);
    await wtd(['init', '--name', 'bob', '--data-dir', join(home, 'bob')]);
    await wtd(['whoami', '--out', join(home, 'bob.pub'), '--data-dir', join(home, 'bob')]);
    // Alice's node has not started: what it offers is not known, so the grant says it is on purpose.
    const to = await wtd([
      'grant',
      '--missions',
      'greetings',
      '--rate',
      '5/s',
      '--expires',
      '7d',
      '--to',
      join(home, 'bob.pub'),
      '--allow-unknown',
      '--json',
      ...alice,
    ]);
    expect(to.code).to.equal(EXIT.ok);
    const record = JSON.parse(to.out) as { expiresAt: number; missions: string[]; label: string };
    expect(record.missions).to.deep.equal(['greetings']);
    expect(record.label).to.equal('bob'); // the card's name
    expect(record.expiresAt - Date.now()).to.be.within(7 * 86_400_000 - 60_000, 7 * 86_400_000);
    for (const bad of [
      ['--rate', 'lots'],
      ['--rate', '5/s', '--expires', 'soon'],
      ['--rate', '5/s', '--burst', '0'],
    ]) {
      const res = await wtd([
        'grant',
        '--missions',
        'greetings',
        ...bad,
        '--to',
        join(home, 'bob.pub'),
        '--allow-unknown',
        ...alice,
      ]);
      expect(res.code, bad.join(' ')).to.equal(EXIT.usage);
    }
    writeFileSync(join(home, 'junk.pub'), 'not json');
    expect(
      (await wtd(['grant', '--missions', 'g', '--rate', '5/s', '--to', join(home, 'junk.pub'), ...alice])).code,
    ).to.equal(EXIT.usage);
    expect(
      (await wtd(['grant', '--missions', 'g', '--rate', '5/s', '--to', join(home, 'none.pub'), ...alice])).code,
    ).to.equal(EXIT.notFound);
    writeFileSync(join(home, 'nokey.card'), JSON.stringify({ wtd: 'card', name: 'x' }));
    const noKey = await wtd([
      'grant',
      '--missions',
      'g',
      '--rate',
      '5/s',
      '--to',
      join(home, 'nokey.card'),
      '--json',
      ...alice,
    ]);
    expect([noKey.code, JSON.parse(noKey.out).error.code]).to.deep.equal([EXIT.failed, 'ERR_BAD_KEY']);
    // Without --allow-unknown, a node that never started grants nothing: it is not known what it offers.
    const unknown = await wtd([
      'grant',
      '--missions',
      'greetings',
      '--rate',
      '5/s',
      '--to',
      join(home, 'bob.pub'),
      '--json',
      ...alice,
    ]);
    expect([unknown.code, JSON.parse(unknown.out).error.code]).to.deep.equal([EXIT.failed, 'ERR_UNKNOWN_MISSION']);
    expect(JSON.parse((await wtd(['grants', '--json', ...alice])).out)).to.have.length(1);
  });

  it('a port already taken is one line with ERR_LISTEN, for a node, a proxy and an observer', async () => {
    await wtd(['init', '--name', 'alice', ...alice]);
    const first = await service(['start', GREETER, '--port', '0', ...alice], 'is running');
    running.push(first);
    const port = new URL(first.url('listening at')).port;
    const node = await wtd(['start', GREETER, '--port', port, '--data-dir', join(home, 'other')]);
    expect(node.code).to.equal(EXIT.notFound); // not initialised: checked before the port
    await wtd(['init', '--name', 'other', '--data-dir', join(home, 'other')]);
    const taken = await wtd(['start', GREETER, '--port', port, '--data-dir', join(home, 'other')]);
    expect(taken.code).to.equal(EXIT.failed);
    expect(taken.err).to.match(/^wtd start: node other could not listen on 127\.0\.0\.1:\d+: .*\[ERR_LISTEN\]\n/);
    expect(taken.err.split('\n')[1]).to.equal(
      '  another program has that port: pick another with --port (0 takes any free one)',
    );
    const proxy = await wtd(['proxy', '--port', port, '--data-dir', join(home, 'p')]);
    expect(proxy.code).to.equal(EXIT.failed);
    expect(proxy.err).to.include('[ERR_LISTEN]').and.include('pick another with --port');
    const observer = await wtd([
      'observer',
      GREETER,
      '--no-listen',
      '--observer-port',
      port,
      '--data-dir',
      join(home, 'other'),
    ]);
    expect(observer.code).to.equal(EXIT.failed);
    // The hint names the flag for the port that was taken: the observer's.
    expect(observer.err).to.include('[ERR_LISTEN]').and.include('pick another with --observer-port');
  });

  it('observer runs the node with its page on 127.0.0.1', async () => {
    await wtd(['init', '--name', 'alice', ...alice]);
    const node = await service(['observer', GREETER, '--port', '0', '--observer-port', '0', ...alice], 'is running');
    running.push(node);
    const url = node.url('observer:');
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const snapshot = (await (await fetch(`${url}/observer.json`)).json()) as {
      node: { name: string };
      tree: { name: string }[];
    };
    expect(snapshot.node.name).to.equal('alice');
    expect(snapshot.tree.map((t) => t.name)).to.deep.equal(['greeter_sup']);
    expect((await fetch(url)).headers.get('content-type')).to.match(/^text\/html/);
  });

  it('proxy, start --proxy on a node with no open port, directory, and a call through the proxy', async () => {
    const proxy = await service(['proxy', '--port', '0', '--data-dir', join(home, 'proxy')], 'listening at');
    running.push(proxy);
    const url = proxy.url('listening at');
    await wtd(['init', '--name', 'alice', ...alice]);
    const needsEmail = await wtd(['start', GREETER, '--no-listen', '--proxy', url, ...alice]);
    expect(needsEmail.code).to.equal(EXIT.usage);
    const node = await service(
      ['start', GREETER, '--no-listen', '--proxy', url, '--email', 'alice@example.org', ...alice],
      'is running',
    );
    running.push(node);
    expect(node.out.join('\n')).to.include('not listening (no open port)');
    const dir = await wtd(['directory', ...alice]);
    expect(dir.out).to.match(/alice\s+\S+\s+greetings\s+through the proxy/);
    const grantFile = join(home, 'bob.grant');
    await wtd(['grant', '--missions', 'greetings', '--rate', '10/s', '--out', grantFile, ...alice]);
    const call = await wtd(['call', grantFile, 'Greeter', 'hello', '["carol"]']);
    expect([call.code, call.out]).to.deep.equal([EXIT.ok, '"hello, carol, from alice"']);
    const noProxy = await wtd(['directory', '--proxy', 'http://127.0.0.1:1']);
    expect(noProxy.code).to.equal(EXIT.unreachable);
    expect(noProxy.err).to.include('[ERR_NODE_DOWN]');
    // One data directory runs one node: a second start there is refused, and changes nothing.
    const config = readFileSync(join(home, 'alice', 'node.json'), 'utf8');
    const twice = await wtd(['start', GREETER, '--port', '0', ...alice]);
    expect(twice.code).to.equal(EXIT.failed);
    expect(twice.err).to.include('[ERR_DATA_DIR_LOCKED]');
    expect(readFileSync(join(home, 'alice', 'node.json'), 'utf8')).to.equal(config);
    // ...while the commands that only grant keep working beside it.
    expect((await wtd(['grants', ...alice])).code).to.equal(EXIT.ok);
    const dave = ['--data-dir', join(home, 'dave')];
    await wtd(['init', '--name', 'dave', ...dave]);
    const cannotJoin = await wtd([
      'start',
      GREETER,
      '--no-listen',
      '--proxy',
      'http://127.0.0.1:1',
      '--email',
      'a@example.org',
      ...dave,
    ]);
    expect(cannotJoin.code).to.equal(EXIT.unreachable);
    expect(cannotJoin.err).to.include('[ERR_NODE_DOWN]');
  });
});
