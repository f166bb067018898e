// Types of mafalda-client: mediasoup v3's server API (names and shapes) over Mafalda.
// RTP shapes are kept loose (objects as mediasoup's types describe them).
import { EventEmitter } from 'node:events';

export type AppData = Record<string, unknown>;
export type MediaKind = 'audio' | 'video';
export type RtpCodecCapability = { kind: MediaKind; mimeType: string; clockRate: number; channels?: number;
  preferredPayloadType?: number; parameters?: Record<string, unknown>; rtcpFeedback?: { type: string; parameter?: string }[] };
export type RtpCapabilities = { codecs?: RtpCodecCapability[]; headerExtensions?: Record<string, unknown>[] };
export type RtpParameters = { mid?: string; codecs: Record<string, unknown>[]; headerExtensions?: Record<string, unknown>[];
  encodings?: Record<string, unknown>[]; rtcp?: Record<string, unknown> };
export type DtlsParameters = { role?: 'auto' | 'client' | 'server'; fingerprints: { algorithm: string; value: string }[] };
export type IceParameters = { usernameFragment: string; password: string; iceLite?: boolean };
export type IceCandidate = { foundation: string; priority: number; ip: string; address?: string;
  protocol: 'udp' | 'tcp'; port: number; type: 'host'; tcpType?: string };
export type IceState = 'new' | 'connected' | 'completed' | 'disconnected' | 'closed';
export type DtlsState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';
export type ConsumerScore = { score: number; producerScore: number; producerScores: number[] };
export type ProducerScore = { encodingIdx: number; ssrc: number; rid?: string; score: number };
export type ConsumerLayers = { spatialLayer: number; temporalLayer?: number };

export interface ConnectOptions {
  /** ws(s)://host:port[/v1/ws] or http(s)://host:port of a node's --api-listen. */
  url?: string;
  /** More nodes to try, in order, for the first connection and for resumption. */
  urls?: string[];
  /** JWT (docs/api.md); omit in the node's dev mode. */
  token?: string;
  /** How long to try to resume after a drop; set it to the nodes' --api-grace-ms. Default 3000. */
  graceMs?: number;
  /** A request without an answer fails with code 'timeout' after this. Default 30000. */
  requestTimeoutMs?: number;
  /** system.ping period; an unanswered ping drops and resumes the socket. 0: off. Default 5000. */
  heartbeatMs?: number;
  connectTimeoutMs?: number;
  /** A WebSocket class (default: the `ws` package, else globalThis.WebSocket). */
  WebSocket?: unknown;
}

export declare class MafaldaError extends Error { code: string; method?: string; constructor(message: string, code?: string, method?: string); }
export declare class InvalidStateError extends MafaldaError {}
export declare class UnsupportedError extends MafaldaError {}
export declare class UnauthorizedError extends MafaldaError {}
/** code 'connection_lost' (request in flight on a dropped socket) or 'session_lost'. */
export declare class ConnectionError extends MafaldaError {}
export declare class MafaldaTypeError extends TypeError { code: string; method?: string; }

export declare class Client extends EventEmitter {
  readonly closed: boolean;
  readonly routers: Router[];
  /** 'newrouter' (router), 'close' */
  readonly observer: EventEmitter;
  /** router.create: a new room; roomId defaults to a join token's room, else a random UUID. */
  createRouter(options?: { mediaCodecs?: RtpCodecCapability[]; appData?: AppData; roomId?: string }): Promise<Router>;
  /** router.join: the room, created with default codecs when absent. */
  joinRouter(roomId: string | { roomId: string }, options?: { appData?: AppData }): Promise<Router>;
  close(): void;
  on(event: 'disconnect', listener: (router: Router) => void): this;
  on(event: 'reconnect', listener: (router: Router, info: { url: string }) => void): this;
  on(event: 'sessionlost', listener: (router: Router, error: ConnectionError) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare class Worker extends EventEmitter {
  readonly pid: number;
  readonly closed: boolean;
  readonly died: boolean;
  readonly subprocessClosed: boolean;
  appData: AppData;
  readonly observer: EventEmitter;
  readonly client: Client;
  close(): void;
  createRouter(options?: { mediaCodecs?: RtpCodecCapability[]; appData?: AppData }): Promise<Router>;
  getResourceUsage(): Promise<never>;
  updateSettings(settings?: unknown): Promise<void>;
  createWebRtcServer(options?: unknown): Promise<never>;
}

export declare class Router extends EventEmitter {
  readonly id: string;
  /** Mafalda: the room's name. */
  readonly roomId: string;
  readonly closed: boolean;
  readonly rtpCapabilities: RtpCapabilities;
  appData: AppData;
  /** 'close', 'newtransport' (transport) */
  readonly observer: EventEmitter;
  readonly connectionState: 'new' | 'open' | 'reconnecting' | 'closed';
  /** Closes the room's router on the node for every session, then this session. */
  close(): Promise<void>;
  /** Mafalda: closes this session's transports and the session only. */
  leave(): Promise<void>;
  /** Async here (the producer may be on another node): await it. */
  canConsume(options: { producerId: string; rtpCapabilities: RtpCapabilities }): Promise<boolean>;
  createWebRtcTransport(options?: { appData?: AppData; enableSctp?: boolean; [k: string]: unknown }): Promise<WebRtcTransport>;
  /** Mafalda: the room's producers (all sessions, all nodes). */
  listProducers(): Promise<{ id: string; kind: MediaKind }[]>;
  createPlainTransport(options?: unknown): Promise<never>;
  createPipeTransport(options?: unknown): Promise<never>;
  createDirectTransport(options?: unknown): Promise<never>;
  pipeToRouter(options?: unknown): Promise<never>;
  createActiveSpeakerObserver(options?: unknown): Promise<never>;
  createAudioLevelObserver(options?: unknown): Promise<never>;
  on(event: 'workerclose', listener: (error?: ConnectionError) => void): this;
  on(event: 'remoteproducer', listener: (producer: { id: string; kind: MediaKind; appData: AppData }) => void): this;
  on(event: 'disconnect' | '@close', listener: () => void): this;
  on(event: 'reconnect', listener: (info: { url: string }) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare class WebRtcTransport extends EventEmitter {
  readonly id: string;
  readonly closed: boolean;
  appData: AppData;
  /** 'close', 'newproducer', 'newconsumer', 'icestatechange', 'dtlsstatechange' */
  readonly observer: EventEmitter;
  readonly iceRole: 'controlled';
  readonly iceParameters: IceParameters;
  readonly iceCandidates: IceCandidate[];
  readonly iceState: IceState;
  readonly iceSelectedTuple: undefined;
  readonly dtlsParameters: DtlsParameters;
  readonly dtlsState: DtlsState;
  readonly dtlsRemoteCert: undefined;
  readonly sctpParameters: undefined;
  readonly sctpState: undefined;
  close(): Promise<void>;
  getStats(): Promise<{ type: 'webrtc-transport'; transportId: string; timestamp: number; iceRole: string;
    iceState: IceState; dtlsState: DtlsState }[]>;
  connect(options: { dtlsParameters: DtlsParameters }): Promise<void>;
  produce(options: { kind: MediaKind; rtpParameters: RtpParameters; paused?: boolean;
    keyFrameRequestDelay?: number; appData?: AppData }): Promise<Producer>;
  consume(options: { producerId: string; rtpCapabilities: RtpCapabilities; paused?: boolean;
    preferredLayers?: ConsumerLayers; appData?: AppData; [k: string]: unknown }): Promise<Consumer>;
  restartIce(): Promise<never>;
  setMaxIncomingBitrate(bitrate: number): Promise<never>;
  setMaxOutgoingBitrate(bitrate: number): Promise<never>;
  enableTraceEvent(types?: string[]): Promise<void>;
  produceData(options?: unknown): Promise<never>;
  consumeData(options?: unknown): Promise<never>;
  on(event: 'icestatechange', listener: (state: IceState) => void): this;
  on(event: 'dtlsstatechange', listener: (state: DtlsState) => void): this;
  on(event: 'routerclose' | '@close', listener: () => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare class Producer extends EventEmitter {
  readonly id: string;
  readonly closed: boolean;
  readonly kind: MediaKind;
  readonly rtpParameters: RtpParameters;
  readonly type: 'simple';
  readonly paused: boolean;
  readonly score: ProducerScore[];
  appData: AppData;
  /** 'close', 'pause', 'resume', 'score' */
  readonly observer: EventEmitter;
  close(): Promise<void>;
  getStats(): Promise<Record<string, unknown>[]>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  enableTraceEvent(types?: string[]): Promise<void>;
  on(event: 'transportclose' | '@close', listener: () => void): this;
  on(event: 'score', listener: (score: ProducerScore[]) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare class Consumer extends EventEmitter {
  readonly id: string;
  readonly producerId: string;
  readonly closed: boolean;
  readonly kind: MediaKind;
  readonly rtpParameters: RtpParameters;
  readonly type: 'simple';
  readonly paused: boolean;
  readonly producerPaused: boolean;
  readonly priority: number;
  readonly score: ConsumerScore;
  readonly preferredLayers?: ConsumerLayers;
  readonly currentLayers?: ConsumerLayers;
  appData: AppData;
  /** 'close', 'pause', 'resume', 'score', 'layerschange' */
  readonly observer: EventEmitter;
  close(): Promise<void>;
  getStats(): Promise<Record<string, unknown>[]>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Rejects with UnsupportedError until simulcast/SVC layers are selected by the node. */
  setPreferredLayers(layers: ConsumerLayers): Promise<void>;
  setPriority(priority: number): Promise<never>;
  unsetPriority(): Promise<never>;
  requestKeyFrame(): Promise<void>;
  enableTraceEvent(types?: string[]): Promise<void>;
  on(event: 'transportclose' | 'producerclose' | 'producerpause' | 'producerresume' | '@close', listener: () => void): this;
  on(event: 'score', listener: (score: ConsumerScore) => void): this;
  on(event: 'layerschange', listener: (layers?: ConsumerLayers) => void): this;
  on(event: string, listener: (...args: any[]) => void): this;
}

export declare function connect(options: ConnectOptions): Promise<Client>;
/** mediasoup's createWorker: the connection from settings.mafalda or MAFALDA_URL(S)/MAFALDA_TOKEN. */
export declare function createWorker(settings?: { mafalda?: ConnectOptions; appData?: AppData; [k: string]: unknown }): Promise<Worker>;
/** 'newworker' (worker) */
export declare const observer: EventEmitter;
export declare const version: string;
export declare const types: {
  Client: typeof Client; Worker: typeof Worker; Router: typeof Router; WebRtcTransport: typeof WebRtcTransport;
  Producer: typeof Producer; Consumer: typeof Consumer; MafaldaError: typeof MafaldaError;
  InvalidStateError: typeof InvalidStateError; UnsupportedError: typeof UnsupportedError;
  UnauthorizedError: typeof UnauthorizedError; ConnectionError: typeof ConnectionError;
  MafaldaTypeError: typeof MafaldaTypeError;
};
declare const _default: { connect: typeof connect; createWorker: typeof createWorker; observer: EventEmitter;
  version: string; types: typeof types };
export default _default;
