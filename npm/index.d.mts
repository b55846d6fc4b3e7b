// Types of the ESM entry (index.mjs): the same named exports as index.d.ts, and as the default
// export what index.mjs exports at run time, the CommonJS module itself: `createAdapter`, which
// also carries every named export as a property. So `import createAdapter from "sioadapter"`
// and `sioadapter.createAdapter(...)` type-check under `module: nodenext` as they run.
import * as cjs from "./index.js";

export * from "./index.js";
declare const sioadapter: typeof cjs.createAdapter & typeof cjs;
export default sioadapter;
