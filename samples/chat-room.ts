/**
 * A chat room on GenEvent: the room is an event manager, each member is a
 * handler. Saying something notifies every member; a member whose handler
 * crashes is dropped and the room carries on.
 *
 * Run it: `node dist/samples/chat-room.js`
 */
import { fileURLToPath } from 'node:url';
import { GenEvent, GenEventHandler, Node, ok, reply, type Logger } from '../lib/index.js';

export interface Said {
  from: string;
  text: string;
}

/** One member: prints what others say, counts what it heard. */
export class Member extends GenEventHandler<number, Said> {
  constructor(
    name: string,
    private readonly say: (line: string) => void,
  ) {
    super(name);
  }
  override handleEvent(event: Said, heard: number) {
    if (event.from === this.id) return ok(heard);
    if (event.text.includes('🍌') && this.id === 'carol') throw new Error('carol cannot stand bananas');
    this.say(`   ${this.id} hears ${event.from}: ${event.text}`);
    return ok(heard + 1);
  }
  override handleCall(_request: 'heard', heard: number) {
    return reply(heard, heard);
  }
}

export async function main(say: (line: string) => void = console.log): Promise<void> {
  const logger: Logger = { error: (m) => say(`   [log] ${m}`) };
  const node = new Node({ name: 'chat', logger });
  const room = await GenEvent.start(node, new GenEvent(), { name: 'room' });
  for (const name of ['alice', 'bob', 'carol']) await GenEvent.addHandler(room, new Member(name, say), 0);
  // The manager lists its handlers newest first, as OTP does; we print them in the order they joined.
  const members = async () => (await GenEvent.whichHandlers(room)).reverse().join(', ');
  say(`members: ${await members()}`);
  say('alice says hello:');
  await GenEvent.syncNotify(room, { from: 'alice', text: 'hello everyone' });
  say('bob shares a banana:');
  await GenEvent.syncNotify(room, { from: 'bob', text: 'have a 🍌' });
  say(`members now: ${await members()}`);
  say(`alice heard ${await GenEvent.call(room, 'alice', 'heard')} messages`);
  await GenEvent.stop(room);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
