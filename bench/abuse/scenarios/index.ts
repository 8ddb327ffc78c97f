/** Every scenario of the abuse suite, in the order of issue 10's table. */
import type { Scenario } from '../scenario.js';
import { abortedRequests } from './aborted-requests.js';
import { addrClaim } from './addr-claim.js';
import { callsFlood } from './calls-flood.js';
import { castNoHandler } from './cast-no-handler.js';
import { controlChars } from './control-chars.js';
import { countdown } from './countdown.js';
import { fourSenders } from './four-senders.js';
import { freeRegistrations } from './free-registrations.js';
import { headersWithoutBody } from './headers-without-body.js';
import { issCarol } from './iss-carol.js';
import { manyIssuers } from './many-issuers.js';
import { massExpiry } from './mass-expiry.js';
import { pidFlood } from './pid-flood.js';
import { pingFlood } from './ping-flood.js';
import { secondEmail } from './second-email.js';
import { silentConnections } from './silent-connections.js';
import { slowHeaders } from './slow-headers.js';
import { streamFlood } from './stream-flood.js';

export const SCENARIOS: Scenario[] = [
  silentConnections,
  slowHeaders,
  headersWithoutBody,
  addrClaim,
  countdown,
  pidFlood,
  manyIssuers,
  issCarol,
  fourSenders,
  freeRegistrations,
  pingFlood,
  massExpiry,
  controlChars,
  castNoHandler,
  abortedRequests,
  secondEmail,
  callsFlood,
  streamFlood,
];
