import { describe, expect, it } from 'vitest';
import { UnbrokenError, isUnbrokenError } from '../../src/client/index.js';

describe('UnbrokenError', () => {
  it('is an Error with a name, a stable code and a message', () => {
    const error = new UnbrokenError('OUTBOX_FULL', 'the outbox holds 3 messages');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('UnbrokenError');
    expect(error.code).toBe('OUTBOX_FULL');
    expect(error.message).toBe('the outbox holds 3 messages');
    expect(String(error)).toBe('UnbrokenError: the outbox holds 3 messages');
  });

  it('keeps its cause, and has none when given none', () => {
    const cause = new TypeError('cyclic');
    expect(new UnbrokenError('INVALID_DATA', 'x', cause).cause).toBe(cause);
    expect('cause' in new UnbrokenError('INVALID_DATA', 'x')).toBe(false);
  });
});

describe('isUnbrokenError()', () => {
  it('is true for an UnbrokenError', () => {
    expect(isUnbrokenError(new UnbrokenError('CLIENT_CLOSED', 'closed'))).toBe(true);
  });

  it('is true for one made by another copy of the library', () => {
    class UnbrokenErrorOfAnotherCopy extends Error {
      override readonly name = 'UnbrokenError';
      readonly code = 'CLIENT_CLOSED';
    }
    expect(isUnbrokenError(new UnbrokenErrorOfAnotherCopy('closed'))).toBe(true);
  });

  it.each([new Error('plain'), new TypeError('type'), { name: 'UnbrokenError', code: 'CLIENT_CLOSED' }, null, undefined, 'UnbrokenError'])(
    'is false for %s',
    (value) => {
      expect(isUnbrokenError(value)).toBe(false);
    },
  );
});
