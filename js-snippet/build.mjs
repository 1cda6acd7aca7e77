// Build t.js: minify src/tracker.js with terser, enforce the gzip size budget.
//   node build.mjs              writes ../collector/static/t.js
//   node build.mjs --out FILE   writes FILE instead (the drift test builds to a temp file)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

const BUDGET = 2048; // bytes, gzipped
const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 ? resolve(args[outIndex + 1]) : resolve(here, '../collector/static/t.js');
const pkg = JSON.parse(readFileSync(resolve(here, 'package.json'), 'utf8'));
const source = readFileSync(resolve(here, 'src/tracker.js'), 'utf8');

const result = await minify(source, {
  ecma: 2015,
  compress: { passes: 3, unsafe: true },
  mangle: true,
  format: { comments: false, preamble: `/*! clickstream t.js ${pkg.version} */` },
});
const code = result.code + '\n';
const gzipped = gzipSync(code, { level: 9 }).length;
console.log(`t.js ${pkg.version}: ${code.length} bytes, ${gzipped} bytes gzipped (budget ${BUDGET})`);
if (gzipped > BUDGET) {
  console.error(`t.js is ${gzipped - BUDGET} bytes over the ${BUDGET}-byte gzip budget`);
  process.exit(1);
}
writeFileSync(out, code);
