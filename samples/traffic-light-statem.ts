/**
 * The traffic light of `traffic-light.ts`, on GenStatem, OTP's successor to
 * gen_fsm: state timeouts are actions, each state announces itself in its
 * enter call, and a status call is answered with a reply action.
 *
 * Run it: `node dist/samples/traffic-light-statem.js`
 */
import { fileURLToPath } from 'node:url';
import {
  GenStatem,
  Node,
  keepStateAndData,
  nextState,
  replyTo,
  stateTimeout,
  type Clock,
  type EventType,
} from '../lib/index.js';
import { AMBER_MS, GREEN_MS, RED_MS } from './traffic-light.js';

interface Light {
  cycles: number;
  log: (line: string) => void;
}

export class TrafficLightStatem extends GenStatem<Light> {
  override readonly stateEnter = true;

  override init(log: (line: string) => void) {
    return nextState<Light>('red', { cycles: 0, log });
  }

  red(type: EventType, content: unknown, light: Light) {
    if (type === 'enter') {
      // An enter call's content is the state we came from: 'red' itself right after init.
      light.log(content === 'red' ? '   light is red' : '   light turns red');
      return keepStateAndData([stateTimeout(RED_MS, 'next')]);
    }
    if (type === 'state_timeout') return nextState('green', light);
    return this.#common(type, 'red', light);
  }

  green(type: EventType, content: unknown, light: Light) {
    if (type === 'enter') {
      light.log('   light turns green');
      return keepStateAndData([stateTimeout(GREEN_MS, 'next')]);
    }
    if (type === 'state_timeout') return nextState('amber', light);
    if (content === 'button') {
      light.log('   button pressed: light turns amber early');
      return nextState('amber', light);
    }
    return this.#common(type, 'green', light);
  }

  amber(type: EventType, _content: unknown, light: Light) {
    if (type === 'enter') {
      light.log('   light turns amber');
      return keepStateAndData([stateTimeout(AMBER_MS, 'next')]);
    }
    if (type === 'state_timeout') return nextState('red', { ...light, cycles: light.cycles + 1 });
    return this.#common(type, 'amber', light);
  }

  /** What every state does with a status call, and with anything else: nothing. */
  #common(type: EventType, state: string, light: Light) {
    if (GenStatem.isCall(type)) return keepStateAndData([replyTo(type.call, { state, cycles: light.cycles })]);
    return keepStateAndData();
  }
}

export async function main(
  say: (line: string) => void = console.log,
  clock?: Clock,
  wait = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  const node = new Node({ name: 'crossing', clock });
  say('Start the light:');
  const light = await GenStatem.start(node, new TrafficLightStatem(), say);
  await wait(RED_MS + 50);
  say('A pedestrian presses the button during green:');
  GenStatem.cast(light, 'button');
  await wait(AMBER_MS + RED_MS + 50);
  say(`status: ${JSON.stringify(await GenStatem.call(light, 'status'))}`);
  await GenStatem.stop(light);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
