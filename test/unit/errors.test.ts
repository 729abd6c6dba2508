import { describe, expect, it } from 'vitest';
import { ContainerError, errnoMessage, errnoName, errnoNumber, invalid } from '../../src-ts/errors.js';

describe('errno helpers', () => {
  it('errnoName', () => {
    expect(errnoName(2)).toBe('ENOENT');
    expect(errnoName(40)).toBe('ELOOP');
    expect(errnoName(1)).toBe('EPERM');
    expect(errnoName(20)).toBe('ENOTDIR');
    expect(errnoName(99999)).toBe('E99999');
  });

  it('errnoNumber and errnoMessage', () => {
    expect(errnoNumber('ENOENT')).toBe(2);
    expect(errnoNumber('ELOOP')).toBe(40);
    expect(errnoNumber('ERR_NOT_AN_ERRNO')).toBeUndefined();
    expect(errnoMessage(2)).toMatch(/no such file or directory/i);
    expect(errnoMessage(99999)).toBe('error 99999');
  });
});

describe('ContainerError', () => {
  it('is an Error with name, message and the given fields', () => {
    const e = new ContainerError('boom', { code: 'ENOENT', stage: 'mount', path: '/dev/pts', errno: 2, syscall: 'mount', op: 4 });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(ContainerError);
    expect(e.name).toBe('ContainerError');
    expect(e.message).toBe('boom');
    expect(e).toMatchObject({ code: 'ENOENT', stage: 'mount', path: '/dev/pts', errno: 2, syscall: 'mount', op: 4 });
  });

  it('keeps a cause as the standard Error cause, not as a field copy', () => {
    const cause = new Error('inner');
    const e = new ContainerError('outer', { code: 'EIO', cause });
    expect(e.cause).toBe(cause);
    expect(new ContainerError('x', { code: 'EIO' }).cause).toBeUndefined();
  });

  it('keeps null values (exitCode/signal of a run result)', () => {
    const e = new ContainerError('x', { code: 'ERR_EXIT', exitCode: null, signal: 'SIGKILL' });
    expect(e.exitCode).toBeNull();
    expect(e.signal).toBe('SIGKILL');
  });

  // Regression: with target ES2022 (useDefineForClassFields), plain optional field declarations
  // (`readonly path?: string;`) define own properties set to undefined; they must be `declare`d.
  it('fields that were not given are absent, not own properties set to undefined', () => {
    const e = new ContainerError('x', { code: 'ENOENT', stage: 'validate', path: undefined });
    expect('path' in e).toBe(false);
    expect('errno' in e).toBe(false);
    expect('option' in e).toBe(false);
    expect('exitCode' in e).toBe(false);
    expect(Object.keys(e).sort()).toEqual(['code', 'name', 'stage'].sort());
  });
});

describe('invalid()', () => {
  it('builds a validation error: code, stage, option, errno, and a path only when given', () => {
    const e = invalid('mounts[0].destination', 'bad', 'EINVAL', 'x');
    expect(e).toMatchObject({ code: 'EINVAL', errno: 22, stage: 'validate', option: 'mounts[0].destination', path: 'x' });
    expect(e.message).toBe('invalid mounts[0].destination: bad');
    const e2 = invalid('umask', 'bad');
    expect(e2.code).toBe('EINVAL');
    expect(e2.path).toBeUndefined();
  });

  it('a non-errno code has no errno', () => {
    const e = invalid('x', 'y', 'ERR_SOMETHING');
    expect(e.code).toBe('ERR_SOMETHING');
    expect(e.errno).toBeUndefined();
  });
});
