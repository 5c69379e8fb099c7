import { runMain } from "../../src/main";

/** wile's main in this process, its output captured (no colours, no terminal). */
export async function runMainCaptured(
  argv: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runMain(
    argv,
    { NO_COLOR: "1", ...env },
    {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      stderrIsTTY: false,
      stdoutIsTTY: false,
    },
  );
  return { code, stdout, stderr };
}
