/**
 * The Store conformance suite: every adapter's test file calls `runStoreContract`, so memory, SQLite and
 * PostgreSQL are held to the same behaviour. It uses only the Store interface.
 *
 * `makeStore` returns a new, unopened store on an empty database for each test (the suite opens and closes it);
 * it receives the strategy, seeded `random`, `maxOutputLines` and a `ManualClock` the test drives.
 */
import { describe } from 'node:test';
import { controlContract } from './contract/control.ts';
import { countFinishedContract } from './contract/count-finished.ts';
import { dedupContract } from './contract/dedup.ts';
import { enqueueClaimContract } from './contract/enqueue-claim.ts';
import { flowsContract } from './contract/flows.ts';
import { groupsContract } from './contract/groups.ts';
import { outputCapsContract } from './contract/output-caps.ts';
import { queryContract } from './contract/query.ts';
import { settleContract } from './contract/settle.ts';
import type { MakeStore } from './contract/context.ts';

export type { MakeStore } from './contract/context.ts';

/** Why: one suite that every Store adapter must pass. `skip` (a reason) skips it visibly. */
export function runStoreContract(name: string, makeStore: MakeStore, opts: { skip?: string } = {}): void {
  describe(`Store contract: ${name}`, opts.skip ? { skip: opts.skip } : {}, () => {
    enqueueClaimContract(makeStore);
    settleContract(makeStore);
    outputCapsContract(makeStore);
    queryContract(makeStore);
    countFinishedContract(makeStore);
    groupsContract(makeStore);
    dedupContract(makeStore);
    flowsContract(makeStore);
    controlContract(makeStore);
  });
}
