/**
 * pq in lease mode: the task of `./pq.ts` with a lease of 30 s, so a slot
 * claims a batch in one committed statement, runs it with no transaction
 * open, and writes the outcomes in one statement.
 *
 * @module
 */

import { openPq } from "./pq.ts";
import type { OpenPeer } from "./peer.ts";

export const open: OpenPeer = openPq({ lease: "30s" });
