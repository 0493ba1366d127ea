/**
 * Sequence numbers of captured output lines: increasing in this process, unique per task across attempts,
 * releases and restarts, and ordered like time (`after=<seq>` cursors work across attempts).
 * The value is `ms × 2048 + n`; more than 2048 lines in one millisecond borrow the next millisecond.
 */
let lastMs = 0;
let n = 0;

export function nextOutputSeq(now: number): number {
  if (now > lastMs) {
    lastMs = now;
    n = 0;
  } else if (++n >= 2048) {
    lastMs++;
    n = 0;
  }
  return lastMs * 2048 + n;
}
