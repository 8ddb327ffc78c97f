import { existsSync } from 'node:fs';
import { expect } from 'chai';
import { ManualClock } from '../../lib/index.js';
import { main as apiExamples } from '../../samples/api-examples.js';
import { main as chatRoom } from '../../samples/chat-room.js';
import { main as development } from '../../samples/development.js';
import { main as readme } from '../../samples/readme.js';
import { main as supervisedCounter } from '../../samples/supervised-counter.js';
import { main as trafficLight } from '../../samples/traffic-light.js';
import { main as trafficLightStatem } from '../../samples/traffic-light-statem.js';
import { main as twoNodes } from '../../samples/two-nodes.js';
import { main as pingPong } from '../../samples/ping-pong.js';
import { main as story } from '../../samples/story/narrator.js';
import { main as wordCount } from '../../samples/word-count.js';
import { flush } from '../fixtures/helpers.js';

async function run(sample: (say: (line: string) => void) => Promise<void>): Promise<string> {
  const lines: string[] = [];
  await sample((line) => lines.push(line));
  return lines.join('\n');
}

describe('samples/', () => {
  it('story (npm start): proxy, Alice and Bob in three processes, told step by step, ending cleanly', async function () {
    this.timeout(60_000);
    const out = await run(story);
    expect(out).to.match(/wtd proxy \(process \d+\) listens at http:\/\/127\.0\.0\.1:\d+/);
    expect(out).to.match(/alice \(\S+\) online, offering: greetings/);
    expect(out).to.include('(proxy: she has no address to call directly)');
    expect(out).to.include('"hello, Bob, from alice"');
    expect(out).to.include('visitor number 1');
    expect(out).to.match(/Bob's process <bob\.\d+\.0> received \{"countdown":3\}[\s\S]*\{"countdown":1\}/);
    expect(out).to.include('3 answered, 3 refused with ERR_RATE_LIMITED');
    expect(out).to.include('refused: ERR_GRANT_REVOKED');
    expect(out).to.match(/visitors was <alice\.\d+\.0> with 1 visit\(s\); it is now <alice\.\d+\.0>, counting from 0/);
    expect(out).to.include("bob.group('greetings') has Carol and Dave as members;");
    expect(out).to.match(/60 calls of Greeter\.hello, spread: carol answered \d+, dave answered \d+\./);
    expect(out).to.match(/100 calls: (carol answered \d+, )?dave answered \d+; failed: none\./);
    expect(out).to.include('The end.');
    // Its temp directory is gone.
    const dir = /their data lives in (\S+) until the end/.exec(out)![1]!;
    expect(existsSync(dir)).to.equal(false);
  });

  it('ping-pong: pids passed both ways between two nodes', async () => {
    const out = await run(pingPong);
    // One process prints the same on both nodes: with its node's name.
    expect(out).to.include("bob's ponger <bob.1.0> got ping 1 from <alice.1.0>");
    expect(out).to.include("alice's pinger <alice.1.0> got pong 3");
    expect(out.split('\n').at(-1)).to.equal('game over');
  });

  it('word-count: a group of three nodes, one closed and then one SIGKILLed half-way, the totals still right', async function () {
    this.timeout(30_000);
    let ok = false;
    const out = await run(async (log) => {
      ok = await wordCount(log);
    });
    expect(ok).to.equal(true);
    expect(out).to.include("half-way: carol's node stops");
    expect(out).to.match(/half-way: carol's process \d+ is killed with SIGKILL/);
    expect(out).to.include('top words: the 44, it 40, of 40');
    expect(out).to.include('top words: the 88, it 80, of 80');
    expect(out.split('the spread count agrees with counting in one place').length).to.equal(3);
    expect(out).to.not.include('DIFFER');
  });

  it('supervised-counter: crash, restart, then the intensity is exceeded', async () => {
    const out = await run(supervisedCounter);
    expect(out).to.include('counter says 3');
    expect(out).to.include('caller caught ERR_SERVER_EXITED: Error: the counter tripped over a bug');
    expect(out).to.match(/restarted it: <demo\.2\.0> -> <demo\.3\.0>, fresh state 0/);
    expect(out).to.include('reached its restart intensity (1 in 5 s)');
    expect(out).to.include("exited with reason 'shutdown'");
    expect(out).to.include('processes still running on the node: 0');
  });

  it('api-examples: every @example in the API reference does what its comment says', async () => {
    const out = await run(apiExamples);
    expect(out.split('\n')).to.deep.equal([
      'got hello',
      'node: exited normal',
      'stack: ["world","hello"]',
      'supervisor: [{"id":"counter","pid":"<demo.2.0>","type":"worker"}]',
      '#1: hello',
      'gen_event: ["Printer"]',
      'gen_fsm: ["wrong code","open","wrong code"]',
      'missions: {"missions":["dev_mission","maths"],"add":5,"test":"dev_mission"}',
      'the server was too slow; try again later',
      'nothing within a second',
      'sys: [["a"],["a","b"],"Stack"]',
      'gen_statem: {"state":"on","flips":1}',
    ]);
  });

  it('readme: the README examples run and print what it says', async () => {
    const out = await run(readme);
    expect(out.split('\n')).to.deep.equal([
      '1',
      'echo!',
      '{"dev_mission":{"functions":["Development/test"],"behaviours":["Development"]}}',
    ]);
  });

  it('development: the seed example loads into dev_mission and reports argument types', async () => {
    const out = await run(development);
    expect(out).to.include('missions offered: dev_mission');
    expect(out).to.include('"test/0 called"');
    expect(out).to.include('["number","string","array","object","null"]');
    expect(out).to.include('{"request":"hello","calls":1}');
  });

  it('chat-room: members hear each other; a crashing member is dropped', async () => {
    const out = await run(chatRoom);
    expect(out).to.include('bob hears alice: hello everyone');
    expect(out).to.include("handler 'carol' crashed and was removed");
    expect(out).to.include('members now: alice, bob');
    expect(out).to.include('alice heard 1 messages');
  });

  it('two-nodes: a grant, a remote call, a pid passed and answered, a refusal, a revocation', async () => {
    const out = await run(twoNodes);
    expect(out.split('\n')).to.deep.equal([
      'alice granted greetings to a new key',
      'bob calls Greeter.hello: hello, bob',
      "bob's process heard: greeting 1 of 2; greeting 2 of 2",
      'outside the grant: ERR_MISSION_NOT_GRANTED (403)',
      'after revoking: ERR_GRANT_REVOKED (403)',
    ]);
  });

  it('traffic-light: state timeouts cycle the light; the button cuts green short', async () => {
    const clock = new ManualClock();
    const out = await run((say) =>
      trafficLight(say, clock, async (ms) => {
        // Time passes in small steps, as it does for real, so each state arms its timeout in turn.
        for (let t = 0; t < ms; t += 10) {
          clock.advance(10);
          await flush(2);
        }
      }),
    );
    expect(out.split('\n').map((l) => l.trim())).to.deep.equal([
      'Start the light:',
      'light is red',
      'light turns green',
      'A pedestrian presses the button during green:',
      'button pressed: light turns amber early',
      'light turns red',
      'light turns green',
      'status: {"state":"green","cycles":1}',
    ]);
  });

  it('traffic-light-statem: the same light on GenStatem, with enter calls and state timeout actions', async () => {
    const clock = new ManualClock();
    const out = await run((say) =>
      trafficLightStatem(say, clock, async (ms) => {
        // Time passes in small steps, as it does for real, so each state arms its timeout in turn.
        for (let t = 0; t < ms; t += 10) {
          clock.advance(10);
          await flush(2);
        }
      }),
    );
    expect(out.split('\n').map((l) => l.trim())).to.deep.equal([
      'Start the light:',
      'light is red',
      'light turns green',
      'A pedestrian presses the button during green:',
      'button pressed: light turns amber early',
      'light turns amber',
      'light turns red',
      'light turns green',
      'status: {"state":"green","cycles":1}',
    ]);
  });
});
