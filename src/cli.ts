import { runMain } from "./main";
import { installInterruptHandlers } from "./util/interrupt";

installInterruptHandlers((line) => process.stderr.write(`${line}\n`));
runMain(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
