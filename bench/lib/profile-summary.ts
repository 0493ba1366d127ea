/**
 * Where the time goes in a V8 CPU profile (`node --cpu-prof`, or `TROUPE_BENCH_CPU_PROF=<dir> npm run bench`):
 * the functions with the most self time, with their file:line, and the same summed per file.
 *
 *   npx tsx bench/lib/profile-summary.ts <file.cpuprofile | dir> [--top 25]
 *
 * A directory means every profile in it, each summarised on its own.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface HotSpot {
  name: string;
  /** `path:line` relative to the repository, or the URL for node internals. */
  where: string;
  selfMs: number;
  selfPct: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const sources = new Map<string, string[] | undefined>();

/**
 * tsx reports every function of a transpiled file at line 1; for a file of this repository the line is found
 * by the function's name in the source (its first definition), which is what a reader needs.
 */
function lineOf(url: string, name: string, reported: number): number {
  if (reported > 0 || !url.startsWith('file://') || !/\.[cm]?ts$/.test(url.split('?')[0]!)) return reported + 1;
  const file = fileURLToPath(url.split('?')[0]!);
  if (!sources.has(file)) {
    try {
      sources.set(file, readFileSync(file, 'utf8').split('\n'));
    } catch {
      sources.set(file, undefined);
    }
  }
  const lines = sources.get(file);
  const bare = name.replace(/^(get|set) /, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (!lines || !bare) return reported + 1;
  const def = new RegExp(`^\\s*(export\\s+)?(default\\s+)?(static\\s+)?(async\\s+)?(function\\s*\\*?\\s*)?(get\\s+|set\\s+)?${bare}\\s*(<[^>]*>)?\\s*\\(|^\\s*(export\\s+)?(const|let)\\s+${bare}\\s*=`);
  const i = lines.findIndex((l) => def.test(l));
  return i >= 0 ? i + 1 : reported + 1;
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const file = url.startsWith('file://') ? fileURLToPath(url) : url;
  return file.startsWith(ROOT) ? file.slice(ROOT.length) : file;
}

/** Why: self time per function from a profile's samples (each sample's time delta goes to the node it hit). */
export function hotSpots(profile: CpuProfile): { totalMs: number; functions: HotSpot[]; files: HotSpot[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  const totalUs = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const fn = new Map<string, HotSpot>();
  const file = new Map<string, HotSpot>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || (url ? '(anonymous)' : `(${functionName || 'program'})`);
    const where = url ? `${shortUrl(url.split('?')[0]!)}:${lineOf(url, name, lineNumber)}` : name;
    const key = `${name} ${where}`;
    const f = fn.get(key) ?? { name, where, selfMs: 0, selfPct: 0 };
    f.selfMs += us / 1000;
    fn.set(key, f);
    const fileKey = url ? shortUrl(url.split('?')[0]!) : name;
    const g = file.get(fileKey) ?? { name: fileKey, where: fileKey, selfMs: 0, selfPct: 0 };
    g.selfMs += us / 1000;
    file.set(fileKey, g);
  }
  const finish = (xs: Iterable<HotSpot>) =>
    [...xs].map((x) => ({ ...x, selfMs: Math.round(x.selfMs * 10) / 10, selfPct: Math.round((x.selfMs * 1000 * 1000) / totalUs) / 10 })).sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: Math.round(totalUs / 100) / 10, functions: finish(fn.values()), files: finish(file.values()) };
}

function printProfile(file: string, top: number): void {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { totalMs, functions, files } = hotSpots(profile);
  console.log(`\n${file}: ${totalMs} ms sampled`);
  console.log('  self ms   self %  function  (file:line)');
  for (const f of functions.slice(0, top)) console.log(`${f.selfMs.toFixed(1).padStart(9)}  ${f.selfPct.toFixed(1).padStart(6)}  ${f.name}  (${f.where})`);
  console.log('  by file:');
  for (const f of files.slice(0, Math.min(top, 15))) console.log(`${f.selfMs.toFixed(1).padStart(9)}  ${f.selfPct.toFixed(1).padStart(6)}  ${f.where}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const target = process.argv[2];
  if (!target) {
    console.error('usage: npx tsx bench/lib/profile-summary.ts <file.cpuprofile | dir> [--top 25]');
    process.exit(2);
  }
  const i = process.argv.indexOf('--top');
  const top = i > 0 ? Number(process.argv[i + 1]) : 25;
  const files = statSync(target).isDirectory()
    ? readdirSync(target).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(target, f))
    : [target];
  for (const f of files) printProfile(f, top);
}
