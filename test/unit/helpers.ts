/** Shared helpers for the unit tests (not a test file itself). */
import { expect } from 'vitest';
import { ContainerError } from '../../src-ts/errors.js';

/** Runs fn, which must throw a ContainerError; returns it for further assertions. */
export function thrown(fn: () => unknown): ContainerError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a ContainerError to be thrown').toBeInstanceOf(ContainerError);
  return caught as ContainerError;
}

/** Asserts a validation failure: ContainerError, stage 'validate', with the given fields. */
export function expectInvalid(
  fn: () => unknown,
  want: { code?: string; option?: string; path?: string },
): ContainerError {
  const err = thrown(fn);
  expect(err.stage).toBe('validate');
  expect(err.code).toBe(want.code ?? 'EINVAL');
  if (want.option !== undefined) expect(err.option).toBe(want.option);
  if (want.path !== undefined) expect(err.path).toBe(want.path);
  return err;
}
