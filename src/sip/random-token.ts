import { randomFillSync } from "node:crypto";

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * `bytes` random bytes as base64url, from a pool refilled by the CSPRNG a page at a time:
 * branches and tags must be unguessable (a guessed branch lets an off-path attacker inject
 * responses over UDP) but are made several times per call, and randomBytes() per token costs
 * a call into the C++ side each time.
 */
export function randomToken(bytes: number): string {
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString("base64url", offset, offset + bytes);
  offset += bytes;
  return token;
}
