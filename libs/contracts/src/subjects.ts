/** NATS subject, stream, consumer and bucket names: the one place they are spelled. */

/** Core NATS request/reply: create a broadcast, reply with id and counts (contacts service). */
export const BROADCAST_REQUEST = 'broadcast.request';
/** JetStream-captured broadcast request, for clients that cannot wait for a reply. */
export const BROADCAST_SUBMIT = 'broadcast.submit';
/** Core NATS request/reply: pause, resume or cancel a broadcast (contacts service). */
export const BROADCAST_CONTROL = 'broadcast.control';

/** Dial jobs of one broadcast; one durable consumer per broadcast reads them. */
export const dialJobSubject = (broadcastId: string): string => `dial.job.${broadcastId}`;
/** Retry jobs of one broadcast, held until due without blocking first attempts. */
export const dialRetrySubject = (broadcastId: string): string => `dial.retry.${broadcastId}`;

/** Every event the reporter aggregates lives in one stream under `evt.>` so it is read in order. */
export const broadcastEventSubject = (broadcastId: string): string => `evt.broadcast.${broadcastId}`;
export const attemptEventSubject = (broadcastId: string): string => `evt.attempt.${broadcastId}`;
export const contactFinalSubject = (broadcastId: string): string => `evt.contact.${broadcastId}`;
export const callEventSubject = (broadcastId: string): string => `evt.call.${broadcastId}`;
/** Acknowledgements, opt-outs and repeat requests pressed during a call. */
export const keypressSubject = (broadcastId: string): string => `evt.keypress.${broadcastId}`;
/** Account-wide signals between dialer replicas (429 seen, breaker opened). */
export const ACCOUNT_SIGNAL = 'dialer.account.signal';

export const STREAMS = {
  /** broadcast.submit: requests captured for asynchronous creation. */
  requests: { name: 'BROADCAST_REQUESTS', subjects: [BROADCAST_SUBMIT] },
  /** dial.job.<bid>, dial.retry.<bid>: the audience of every broadcast, one message per attempt. */
  dial: { name: 'DIAL', subjects: ['dial.job.>', 'dial.retry.>'] },
  /** evt.>: broadcast lifecycle, attempts, call events, keypresses, final contact states. */
  events: { name: 'EVENTS', subjects: ['evt.>'] },
} as const;

export const BUCKETS = {
  /** broadcast id -> BroadcastSpec (immutable once written). */
  broadcasts: 'broadcasts',
  /** broadcast id -> BroadcastControlState (running/paused/cancelled), watched by every dialer. */
  control: 'broadcast-control',
  /** idempotency key -> broadcast id (so a retried request never starts a second broadcast). */
  idempotency: 'broadcast-idempotency',
  /** <bid>.<cid>.<attempt> -> AttemptClaim: the call ledger shared by dialer replicas. */
  ledger: 'call-ledger',
  /** pacer state (GCRA theoretical arrival time) shared by dialer replicas. */
  pacer: 'pacer',
  /**
   * <bid>.<cid>.<attempt> -> call slot: one key per attempt holding or waiting for a place under the
   * account-wide and per-broadcast concurrency caps; deleted when the attempt ends.
   */
  slots: 'call-slots',
} as const;

/** Durable consumer names. */
export const CONSUMERS = {
  dialerJobs: (broadcastId: string): string => `dialer-jobs-${broadcastId}`,
  dialerRetries: (broadcastId: string): string => `dialer-retries-${broadcastId}`,
  dialerCallEvents: 'dialer-call-events',
  reporterEvents: 'reporter-events',
  reporterDial: 'reporter-dial',
  contactsSubmit: 'contacts-submit',
  contactsKeypress: 'contacts-keypress',
} as const;

/** Key of one attempt in the ledger and in message ids: `<bid>.<cid>.<attempt>`. */
export const attemptKey = (broadcastId: string, contactId: string, attempt: number): string =>
  `${broadcastId}.${contactId}.${attempt}`;
