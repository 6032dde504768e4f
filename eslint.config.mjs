// ESLint for the TypeScript of src/, test/, bench/, demo/ and scripts/ (`npm run lint`): the recommended rules of
// ESLint and typescript-eslint. Formatting is Prettier's (.prettierrc.json), C++ is clang-format's (.clang-format).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'prebuilds/', 'man/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
);
