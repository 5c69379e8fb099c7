/** RFC 8555 7.1.4 identifier; "ip" per RFC 8738. */
export interface Identifier {
  type: "dns" | "ip";
  value: string;
}
