// mafalda-client: mediasoup v3's server API backed by a Mafalda cluster. See README.md.
import { Client, Worker, connect, createWorker, observer, version } from './lib/client.js';
import { Consumer, Producer, Router, WebRtcTransport } from './lib/objects.js';
import { ConnectionError, InvalidStateError, MafaldaError, MafaldaTypeError, UnauthorizedError,
  UnsupportedError } from './lib/errors.js';

// mediasoup exports its classes and errors under `types`.
export const types = {
  Client, Worker, Router, WebRtcTransport, Producer, Consumer,
  MafaldaError, InvalidStateError, UnsupportedError, UnauthorizedError, ConnectionError, MafaldaTypeError,
};

export { Client, Worker, connect, createWorker, observer, version, Router, WebRtcTransport, Producer,
  Consumer, MafaldaError, InvalidStateError, UnsupportedError, UnauthorizedError, ConnectionError,
  MafaldaTypeError };

export default { connect, createWorker, observer, version, types };
