/**
 * A traffic light on GenFsm: three states, each a method, each moving on
 * after a state timeout. A pedestrian button shortens the green phase.
 *
 * Run it: `node dist/samples/traffic-light.js`
 */
import { fileURLToPath } from 'node:url';
import { GenFsm, Node, TIMEOUT, nextState, replyState, type Clock, type From } from '../lib/index.js';

interface Light {
  cycles: number;
  log: (line: string) => void;
}

export const GREEN_MS = 300;
export const AMBER_MS = 100;
export const RED_MS = 200;

export class TrafficLight extends GenFsm<Light> {
  override init(log: (line: string) => void) {
    log('   light is red');
    return nextState<Light>('red', { cycles: 0, log }, RED_MS);
  }
  red(event: unknown, light: Light) {
    if (event !== TIMEOUT) return nextState('red', light, RED_MS);
    light.log('   light turns green');
    return nextState('green', light, GREEN_MS);
  }
  green(event: unknown, light: Light) {
    if (event === TIMEOUT || event === 'button') {
      light.log(event === 'button' ? '   button pressed: light turns amber early' : '   light turns amber');
      return nextState('amber', light, AMBER_MS);
    }
    return nextState('green', light);
  }
  amber(event: unknown, light: Light) {
    if (event !== TIMEOUT) return nextState('amber', light, AMBER_MS);
    light.log('   light turns red');
    return nextState('red', { ...light, cycles: light.cycles + 1 }, RED_MS);
  }
  override handleSyncEvent(_event: unknown, _from: From, stateName: string, light: Light) {
    return replyState({ state: stateName, cycles: light.cycles }, stateName, light);
  }
}

export async function main(
  say: (line: string) => void = console.log,
  clock?: Clock,
  wait = (ms: number) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  const node = new Node({ name: 'crossing', clock });
  say('Start the light:');
  const light = await GenFsm.start(node, new TrafficLight(), say);
  await wait(RED_MS + 50);
  say('A pedestrian presses the button during green:');
  GenFsm.sendEvent(light, 'button');
  await wait(AMBER_MS + RED_MS + 50);
  say(`status: ${JSON.stringify(await GenFsm.syncSendAllStateEvent(light, 'status'))}`);
  await GenFsm.stop(light);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
