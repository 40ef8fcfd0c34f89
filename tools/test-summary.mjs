// Adds up every package's vitest JSON report into one closing line.
import fs from 'node:fs';
import path from 'node:path';

let passed = 0;
let failed = 0;
let skipped = 0;
// the workspace's packages: packages/*, apps/* and examples
const dirs = ['packages', 'apps'].flatMap((root) =>
  fs.existsSync(root) ? fs.readdirSync(root).map((name) => path.join(root, name)) : [],
);
dirs.push('examples');
for (const dir of dirs) {
  const file = path.join(dir, '.vitest-result.json');
  if (!fs.existsSync(file)) continue;
  const report = JSON.parse(fs.readFileSync(file, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0);
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
