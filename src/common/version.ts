// dist/src/common/version.js -> package.json
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const VERSION: string = require('../../../package.json').version;
