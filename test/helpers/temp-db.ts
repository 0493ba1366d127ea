import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

const dirs: string[] = [];
// Registered when the test file imports this module (file level), not from inside a test.
after(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh SQLite file path in its own temporary directory, removed after the test file's tests. */
export function tempDb(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `troupe-${prefix}-`));
  dirs.push(dir);
  return path.join(dir, 'troupe.db');
}
