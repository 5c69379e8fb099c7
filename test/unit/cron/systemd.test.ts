import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  installUnits,
  removeUnits,
  systemdQuote,
  unitDir,
  unitFiles,
  unitName,
} from "../../../src/cron/systemd";

describe("systemd user timer", () => {
  test("unit names: wile for the default home, wile-<hash> for others", () => {
    const env = { HOME: "/home/me" };
    assert.equal(unitName("/home/me/.wile", env), "wile");
    assert.match(unitName("/srv/wile-mail", env), /^wile-[0-9a-f]{8}$/);
    assert.notEqual(unitName("/srv/a", env), unitName("/srv/b", env));
  });

  test("unit dir: XDG_CONFIG_HOME, else ~/.config", () => {
    assert.equal(unitDir({ HOME: "/home/me" }), "/home/me/.config/systemd/user");
    assert.equal(unitDir({ HOME: "/home/me", XDG_CONFIG_HOME: "/cfg" }), "/cfg/systemd/user");
  });

  test("service runs wile cron --home; timer twice a day at the schedule, randomized, persistent", () => {
    const u = unitFiles({ minute: 7, hours: [3, 15] }, ["/usr/bin/node", "/opt/wile.cjs"], "/home/me/.wile", {
      HOME: "/home/me",
    });
    assert.equal(u.servicePath, "/home/me/.config/systemd/user/wile.service");
    assert.equal(u.timerPath, "/home/me/.config/systemd/user/wile.timer");
    assert.match(u.service, /^Type=oneshot$/m);
    assert.match(u.service, /^ExecStart=\/usr\/bin\/node \/opt\/wile\.cjs cron --home \/home\/me\/\.wile$/m);
    assert.match(u.timer, /^OnCalendar=\*-\*-\* 03,15:07:00$/m);
    assert.match(u.timer, /^RandomizedDelaySec=\S+$/m);
    assert.match(u.timer, /^Persistent=true$/m);
    assert.match(u.timer, /^WantedBy=timers\.target$/m);
  });

  test("ExecStart quoting escapes quotes, backslashes, % and $", () => {
    assert.equal(systemdQuote("/plain"), "/plain");
    assert.equal(systemdQuote('/a b/"x"\\%$HOME'), '"/a b/\\"x\\"\\\\%%$$HOME"');
  });

  test("install writes the files, is idempotent, and remove deletes them (systemctl unreachable here)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wile-systemd-"));
    // No user bus in the test environment: systemctl fails (or is missing), which must not throw.
    const env = {
      HOME: dir,
      XDG_RUNTIME_DIR: join(dir, "no-runtime"),
      DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent",
    };
    const u = unitFiles({ minute: 7, hours: [3, 15] }, ["/usr/bin/wile"], join(dir, ".wile"), env);
    const first = await installUnits(u, env);
    assert.equal(first.changed, true);
    assert.equal(first.enabled, false);
    assert.ok(first.systemctlError);
    assert.equal(readFileSync(u.timerPath, "utf8"), u.timer);
    assert.equal(statSync(u.servicePath).mode & 0o777, 0o644);
    const second = await installUnits(u, env);
    assert.equal(second.changed, false);
    const removed = await removeUnits(u, env);
    assert.deepEqual(removed.removed.sort(), [u.servicePath, u.timerPath].sort());
    const again = await removeUnits(u, env);
    assert.deepEqual(again.removed, []);
  });
});
