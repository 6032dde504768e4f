// node-gyp-build ships no types: it takes the package root and returns the addon it finds there.
declare module 'node-gyp-build' {
  function load(root: string): unknown;
  export = load;
}
