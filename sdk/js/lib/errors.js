// Errors of the SDK. Every error the server answers becomes an Error subclass carrying the
// server's stable code (docs/api.md "Errors") in `code`; the class follows what mediasoup
// throws in the same situation so `instanceof TypeError` / `err.name === 'InvalidStateError'`
// checks written for mediasoup keep working:
//
//   server code          class                 why
//   invalid_argument     MafaldaTypeError      mediasoup throws TypeError for bad arguments
//   parse_error          MafaldaTypeError      an argument the node could not parse (e.g.
//                                              malformed rtpParameters)
//   invalid_state        InvalidStateError     mediasoup's InvalidStateError
//   closed               InvalidStateError     the object is gone (mediasoup: closed channel)
//   unsupported          UnsupportedError      mediasoup's UnsupportedError
//   unauthorized         UnauthorizedError     token refused (the connection is closed)
//   anything else        MafaldaError          not_found, already_exists, limit_exceeded, ...
//
// Local conditions: a method on a closed object throws InvalidStateError (code 'closed');
// a bad argument caught before sending throws MafaldaTypeError (code 'invalid_argument');
// a request lost with its connection rejects with ConnectionError (code 'connection_lost'
// when the connection dropped while the request was in flight, 'session_lost' when the
// session could not be resumed within the grace period).

export class MafaldaError extends Error {
  constructor(message, code = 'internal_error', method = undefined) {
    super(message);
    this.name = 'MafaldaError';
    this.code = code;
    if (method) this.method = method;
  }
}

export class InvalidStateError extends MafaldaError {
  constructor(message, code = 'invalid_state', method = undefined) {
    super(message, code, method);
    this.name = 'InvalidStateError';
  }
}

export class UnsupportedError extends MafaldaError {
  constructor(message, code = 'unsupported', method = undefined) {
    super(message, code, method);
    this.name = 'UnsupportedError';
  }
}

export class UnauthorizedError extends MafaldaError {
  constructor(message, code = 'unauthorized', method = undefined) {
    super(message, code, method);
    this.name = 'UnauthorizedError';
  }
}

export class ConnectionError extends MafaldaError {
  constructor(message, code = 'connection_lost', method = undefined) {
    super(message, code, method);
    this.name = 'ConnectionError';
  }
}

// A TypeError (so `instanceof TypeError` holds, as with mediasoup) that carries a code.
export class MafaldaTypeError extends TypeError {
  constructor(message, code = 'invalid_argument', method = undefined) {
    super(message);
    this.code = code;
    if (method) this.method = method;
  }
}

// The error for a server answer {code, message} to `method`.
export function fromServer(method, error) {
  const code = (error && typeof error.code === 'string') ? error.code : 'internal_error';
  const text = (error && typeof error.message === 'string') ? error.message : 'no message';
  const message = `${method}: ${text}`;
  switch (code) {
    case 'invalid_argument':
    case 'parse_error': return new MafaldaTypeError(message, code, method);
    case 'invalid_state':
    case 'closed': return new InvalidStateError(message, code, method);
    case 'unsupported': return new UnsupportedError(message, code, method);
    case 'unauthorized': return new UnauthorizedError(message, code, method);
    default: return new MafaldaError(message, code, method);
  }
}

export function closedError(what) {
  return new InvalidStateError(`${what} closed`, 'closed');
}
