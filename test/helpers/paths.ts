import path from 'node:path';

// Tests run from dist/test/.
export const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli.js');
export const POPULATION = path.resolve(__dirname, '..', 'fixtures', 'population.js');
