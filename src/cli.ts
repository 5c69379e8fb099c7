import { runMain } from "./main";

runMain(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
