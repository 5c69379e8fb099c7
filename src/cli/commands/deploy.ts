import { TARGET_KINDS, targetKind } from "../../deploy/registry";
import { withCertificateLock } from "../../flow/cert-lock";
import { redeploy } from "../../flow/lifecycle";
import { CertStore } from "../../store/certs";
import { UsageError } from "../../util/errors";
import type { Command, CommandContext } from "../command";
import { allTargetOptions, DEPLOY_OPTION, deployConfigsFromOptions, targetOptions } from "../deploy-options";
import { optionLines } from "../help";
import { list } from "../options";

export const deployCommand: Command = {
  name: "deploy",
  summary:
    "run (or set) a certificate's deploy targets: copy, reload the service, verify it serves the certificate",
  usage: "wile deploy NAME [--deploy KIND [KIND options] ...]",
  get description() {
    return [
      "Without --deploy, runs the targets stored in NAME's renewal.json again (after fixing what",
      "made one fail, say). With --deploy, replaces the stored targets with the ones given and runs",
      "them; renewals replay them. Every target is checked before any file is changed. A target",
      "that names a service endpoint connects after the reload and compares the certificate it",
      "serves with the new one. Exit 0 all deployed, 1 a target failed (the certificate stays), or",
      "another wile run (a renewal, say) is working on NAME: nothing is done and that run is named.",
      "",
      "Targets (wile deploy KIND --help for one):",
      ...TARGET_KINDS.map((k) => `  ${k.kind.padEnd(9)} ${k.summary}`),
    ].join("\n");
  },
  options: [DEPLOY_OPTION, ...allTargetOptions()],
  topicHelp(topic) {
    const kind = targetKind(topic);
    if (!kind) return undefined;
    return [
      `Usage: wile issue ... --deploy ${kind.kind} [options]`,
      `       wile deploy NAME --deploy ${kind.kind} [options]`,
      "",
      `${kind.summary.replace(/\.$/, "")}.`,
      "",
      "Options:",
      ...optionLines(targetOptions(kind)),
      "",
      "The settings are stored in the certificate's renewal.json; every renewal deploys again, and",
      "wile deploy NAME re-runs them. All targets: wile deploy --help.",
    ].join("\n");
  },
  logs: true,
  examples: [
    "wile deploy mail.example.com --deploy dovecot --deploy postfix",
    "wile deploy example.com --deploy files --key-file /etc/ssl/private/x.key --fullchain-file /etc/ssl/x.pem --reload-cmd 'systemctl reload nginx'",
    "wile deploy example.com",
  ],
  async run(ctx) {
    const { opts, out, home } = ctx;
    const [name, ...more] = opts._;
    if (!name || more.length > 0)
      throw new UsageError("give the certificate's NAME", { hint: "wile list shows the names." });
    if (!(await new CertStore(home).readRenewal(name))) throw noRenewal(name, home);
    const { error, cfg } = await withCertificateLock(home, name, `wile deploy ${name}`, () =>
      deployLocked(ctx, name),
    );
    if (error !== undefined) throw error;
    const n = cfg.deploy.length;
    out.logger.info(`${name}: deployed to ${n} target${n === 1 ? "" : "s"}`);
    if (out.jsonMode) out.json({ name, deployed: cfg.deploy.map((d) => d.kind) });
    return 0;
  },
};

/** Sets the targets given (if any) and deploys, holding the certificate's lock. */
async function deployLocked(ctx: CommandContext, name: string) {
  const { opts, out, home } = ctx;
  const store = new CertStore(home);
  const cfg = await store.readRenewal(name);
  if (!cfg) throw noRenewal(name, home);
  const kinds = list(opts, "deploy");
  if (kinds.length > 0) {
    cfg.deploy = deployConfigsFromOptions(opts, kinds);
    cfg.updatedAt = new Date().toISOString();
    await store.writeRenewal(name, cfg);
    out.logger.info(`${name}: deploy targets set to ${kinds.join(", ")}`);
  } else {
    deployConfigsFromOptions(opts, []); // target options without --deploy are a mistake
    if (cfg.deploy.length === 0) {
      throw new UsageError(`${name} has no deploy targets`, {
        hint: `Set some: wile deploy ${name} --deploy KIND ...`,
      });
    }
  }
  // A failed deploy is recorded as pending (wile list shows it, the next cron deploys again).
  const { error } = await redeploy(cfg, {
    home,
    logger: out.logger,
    now: new Date(),
    verifyWaitMs: ctx.verifyWaitMs,
  });
  return { error, cfg };
}

function noRenewal(name: string, home: string): UsageError {
  return new UsageError(`no certificate named "${name}" with a renewal.json in ${home}`, {
    hint: "wile list shows the names.",
  });
}
