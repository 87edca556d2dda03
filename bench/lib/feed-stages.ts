/**
 * Where a live event's time goes before it leaves the decoding node: the
 * `slotwise_feed_delay_seconds` histogram (server/db/feed.ts) of both nodes
 * (only the decoder observes), read before and after a run; the difference
 * gives per stage the count and the median and 99th percentile, as the
 * upper bound of the bucket they fall in (bucket bounds: 1, 2, 5, 10, 20,
 * 50, 100, 200, 500 ms, …).
 */
const STAGES = ['decoded', 'stored', 'emitted'] as const;
type Stage = (typeof STAGES)[number];
/** Cumulative count per bucket bound (seconds; Infinity for +Inf), per stage. */
export type FeedHistogram = Record<Stage, Map<number, number>>;

export async function readFeedStages(urls: string[]): Promise<FeedHistogram> {
  const sum: FeedHistogram = { decoded: new Map(), stored: new Map(), emitted: new Map() };
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    for (const m of text.matchAll(/^slotwise_feed_delay_seconds_bucket\{([^}]*)\} (\S+)$/gm)) {
      const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
      const stage = labels.stage as Stage;
      if (!STAGES.includes(stage)) continue;
      const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
      sum[stage].set(le, (sum[stage].get(le) ?? 0) + Number(m[2]));
    }
  }
  return sum;
}

const bound = (s: number) => (s === Infinity ? '> 10 s' : s < 1 ? `≤ ${s * 1000} ms` : `≤ ${s} s`);

/** "decoded p50 ≤ 2 ms, p99 ≤ 50 ms; stored …" for what was observed between two readings. */
export function describeFeedStages(before: FeedHistogram, after: FeedHistogram): string {
  const parts: string[] = [];
  for (const stage of STAGES) {
    const bounds = [...after[stage].keys()].sort((a, b) => a - b);
    const counts = bounds.map((b) => (after[stage].get(b) ?? 0) - (before[stage].get(b) ?? 0));
    const n = counts[counts.length - 1] ?? 0;
    if (!n) continue;
    const at = (q: number) => bounds[counts.findIndex((c) => c >= q * n)]!;
    parts.push(`${stage} p50 ${bound(at(0.5))}, p99 ${bound(at(0.99))}`);
  }
  return parts.length ? `after commit, on the decoding node: ${parts.join('; ')}` : 'no feed stage timings (slotwise_feed_delay_seconds) were observed';
}
