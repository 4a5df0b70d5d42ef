// Reads one run of `conformance server` (its stdout and its --output-dir) and
// prints one line per scenario, tab-separated:
//   <scenario>\t<pass|fail>\t<reason>
// The verdict is the suite's own (its SUMMARY lines, ✓ or ✗); the reason lists
// the failed checks from the scenario's checks.json as `id: errorMessage`.
//
//   node report.mjs STDOUT_FILE
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const stdout = readFileSync(process.argv[2], 'utf8');
const dirs = new Map(); // scenario -> results directory
let current = null;
for (const line of stdout.split('\n')) {
  let m = line.match(/^=== Running scenario: (.+) ===$/);
  if (m) current = m[1];
  m = line.match(/^Results saved to (.+)$/);
  if (m && current) dirs.set(current, m[1].trim());
}

const oneLine = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();
const summary = stdout.slice(stdout.lastIndexOf('=== SUMMARY ==='));
for (const line of summary.split('\n')) {
  const m = line.match(/^([✓✗]) (\S+): (\d+) passed, (\d+) failed/);
  if (!m) continue;
  const [, mark, scenario, passed, failed] = m;
  let reason = '';
  if (mark !== '✓') {
    const file = dirs.has(scenario) ? join(dirs.get(scenario), 'checks.json') : null;
    if (file && existsSync(file)) {
      const checks = JSON.parse(readFileSync(file, 'utf8'));
      reason = checks
        .filter((c) => c.status === 'FAILURE')
        .map((c) => `${c.id}: ${oneLine(c.errorMessage || c.description).slice(0, 240)}`)
        .join('; ');
    }
    if (!reason) reason = `${failed} of ${Number(passed) + Number(failed)} checks failed`;
  } else if (passed === '0' && failed === '0') {
    reason = 'no checks ran';
  }
  console.log(`${scenario}\t${mark === '✓' ? 'pass' : 'fail'}\t${reason}`);
}
