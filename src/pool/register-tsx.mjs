// Preloaded by each worker thread of the pool (`--import`): registers tsx's hooks, so that `handler-worker.ts` and
// the handler modules it imports load as TypeScript. Both hooks, as `bin/troupe.js` does: in a package without
// "type": "module" a handler `.ts` is CommonJS, which tsx's ES module hook hands to require(), and only the
// CommonJS hook compiles it.
//
// A file of its own, found with `new URL(…, import.meta.url)`: troupe's sources may themselves be loaded as
// CommonJS (a config file in such a package imports troupe through tsx's require hook), where
// `import.meta.resolve` is missing. This file is always an ES module, and resolves tsx from troupe's own folder.
import { register as registerCommonJs } from 'tsx/cjs/api';
import { register } from 'tsx/esm/api';

register();
registerCommonJs();
