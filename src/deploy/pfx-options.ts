import type { OptionSpec } from "../cli/options";

/** PKCS#12 options shared by the files and exchange targets. */
export const PFX_OPTIONS: OptionSpec[] = [
  {
    name: "pfx-password",
    type: "string",
    arg: "PW",
    help: "password of the PKCS#12 file (default: a new random one each time: files writes it to PATH.pass, exchange sends it only on ssh's stdin; a given one is stored in renewal.json)",
  },
  {
    name: "pfx-legacy",
    type: "boolean",
    help: "PKCS#12 with 3DES and a SHA-1 MAC, for Windows Server 2016 and older (default: AES-256 and SHA-256, Windows Server 2019 and newer)",
  },
];
