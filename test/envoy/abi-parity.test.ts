// hookwire's import object and Envoy's list must be the same set: anything
// extra would let a module pass here and fail in Envoy; anything missing would
// refuse a module Envoy loads.
import { describe, expect, it } from 'vitest';
import { AbiVersion } from '../../host/abi/constants.js';
import { envoyImports } from '../../host/abi/envoy.js';
import { providedImports } from '../../host/abi/imports.js';

describe('host imports and Envoy imports are the same set', () => {
  for (const version of Object.values(AbiVersion)) {
    it(`ABI ${version}`, () => {
      const provided = [...providedImports(version)].sort();
      const envoy = [...envoyImports(version)].sort();
      expect(provided.filter((n) => !envoyImports(version).has(n))).toEqual([]);
      expect(envoy.filter((n) => !providedImports(version).has(n))).toEqual([]);
    });
  }
});
