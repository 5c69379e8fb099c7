declare const __WILE_VERSION__: string | undefined;

/** The version baked in by scripts/build.mjs; "dev" when running from source (tests through tsx). */
export const VERSION: string = typeof __WILE_VERSION__ === "string" ? __WILE_VERSION__ : "dev";
