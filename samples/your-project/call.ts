/**
 * README's "Use WTD in your own project": reading a grant file in code,
 * verbatim but for the import path. It reads bob.grant in the working
 * directory (spec/docs/readme makes one, then imports this file).
 */
import { readFileSync } from 'node:fs';
import { WtdNode, type GrantFile } from '../../lib/index.js';

const grant = JSON.parse(readFileSync('bob.grant', 'utf8')) as GrantFile;
const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
const alice = await bob.connect(grant); // through the proxy when the file has no address: bob.joinProxy() first
console.log(await alice.call('Greeter', 'hello', ['bob']));
console.log(await alice.genServer('greetings', 'counter').call('get'));
await bob.close();
