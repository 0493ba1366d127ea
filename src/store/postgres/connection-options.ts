/** Session settings every connection of a PostgreSQL store starts with. */

/**
 * A queue table swings between nearly empty and large. A prepared statement's cached generic plan is chosen from
 * the statistics of the moment, so one planned while the table looked empty keeps scanning the whole table (seq
 * scan + sort for a claim, even for a primary-key lookup) after it has grown: measured 1 s per claim at 13k
 * rows. Custom plans use the table's current size; the statements stay named, so parsing is still saved.
 */
export const STARTUP_OPTIONS = '-c plan_cache_mode=force_custom_plan';

/**
 * The connections that settle outcomes: every statement they run finds its rows by primary key (the ops' ids) or
 * inserts, so its plan does not depend on the table's size, and a generic plan, made once per connection, is
 * kept. Planning each settle anew (custom plans, above) took ≈0.38 ms of a 60-task settle's ≈1.2 ms on the
 * server. `enable_seqscan=off` keeps a generic plan made while the table looked empty on the primary key instead
 * of a scan of the table (a sequential scan stays possible where no index serves, at a high estimated cost).
 */
export const SETTLE_OPTIONS = '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off';

/**
 * The connections that run the claim with a name list (claim.ts `namedClaimSql`, every runtime's claim): its plan
 * is the same whatever the table holds (one ordered scan of the strategy's name-leading index per name, then a
 * TID scan of the picked rows), so a generic plan, made once per connection, is kept. Planning it anew took
 * 0.34–0.42 ms a claim (EXPLAIN ANALYZE, 20,000 queued), half of a claim's fixed cost. With sequential and
 * bitmap scans off, the name-leading index is the only way the planner has to the ordered rows, with or without
 * statistics, empty table or full.
 */
export const CLAIM_OPTIONS = '-c plan_cache_mode=force_generic_plan -c enable_seqscan=off -c enable_bitmapscan=off';

/**
 * Why: session settings go in the startup packet (no extra round trip, nothing queued ahead of the first query).
 * pg lets an `options` parameter in the URL replace the config's, so one found there is merged with ours.
 */
export function withStartupOptions(url: string, options: string): { connectionString: string; options: string } {
  try {
    const u = new URL(url);
    const own = u.searchParams.get('options');
    if (own !== null) {
      u.searchParams.delete('options');
      return { connectionString: u.toString(), options: `${own} ${options}` };
    }
  } catch {
    // not a WHATWG URL (a key=value string, a socket path form): pg parses it; ours go in the config
  }
  return { connectionString: url, options };
}
