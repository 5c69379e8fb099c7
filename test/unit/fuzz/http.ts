/** Generated HTTP header values an ACME server may send: Retry-After and Link, well-formed and damaged. */
import fc from "fast-check";
import { mutatedText } from "./mutate";

const retryAfterValue = fc.oneof(
  fc.stringMatching(/^[ \t]*\d{1,40}[ \t]*$/),
  fc.nat().map(String),
  fc.bigInt({ min: 0n, max: 10n ** 400n }).map(String),
  fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
  fc.date({ noInvalidDate: true }).chain((d) => mutatedText(d.toUTCString())),
  mutatedText("Sun, 29 Nov 2026 12:00:30 GMT"),
  mutatedText("120"),
  fc.string({ maxLength: 40, unit: "binary" }),
);
/** A Retry-After header as a CA may send it: seconds, dates, damaged, several, none. */
export const retryAfterHeader = fc.oneof(
  { weight: 4, arbitrary: retryAfterValue },
  { weight: 1, arbitrary: fc.array(retryAfterValue, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,10}$/);
const quoted = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
/** One well-formed link-value: a URL, a rel (quoted or not) and other parameters. */
export const linkValue = fc.record({
  url: fc.oneof(
    fc.webUrl({ withQueryParameters: true, withFragments: true }),
    fc.constantFrom("/acme/directory", "../up", "?x=1", ""),
  ),
  rel: fc.array(fc.oneof(fc.constantFrom("help", "up", "alternate", "index", "HELP"), token), {
    minLength: 1,
    maxLength: 3,
  }),
  quote: fc.boolean(),
  params: fc.array(fc.tuple(token, fc.string({ maxLength: 10 })), { maxLength: 3 }),
});
export type LinkSpec = typeof linkValue extends fc.Arbitrary<infer T> ? T : never;
export const BASE = "https://ca.example/acme/order/1";

export function render(l: LinkSpec): string {
  const rel = l.rel.join(" ");
  const extra = l.params
    .filter(([name]) => name.toLowerCase() !== "rel")
    .map(([name, v]) => `; ${name}=${quoted(v)}`)
    .join("");
  return `<${l.url}>; rel=${l.quote || l.rel.length > 1 ? quoted(rel) : rel}${extra}`;
}

/** A Link header damaged, or any text. */
export const damagedLinkHeader = fc.oneof(
  fc.array(linkValue, { minLength: 1, maxLength: 3 }).chain((ls) => mutatedText(ls.map(render).join(", "))),
  mutatedText(
    '<https://ca.example/docs/rate-limits>;rel="help", <https://ca.example/acme/directory>;rel="index"',
  ),
  fc.string({ maxLength: 60, unit: "binary" }),
  fc.array(fc.string({ maxLength: 20 }), { maxLength: 3 }),
);
