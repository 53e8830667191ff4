/** OpenAPI 3.1 description of the reporter's REST API, served at /openapi.json. */
const idParam = (name: string, what: string) => ({ name, in: 'path', required: true, description: what, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } });
const query = (name: string, description: string, schema: Record<string, unknown> = { type: 'string' }) => ({ name, in: 'query', required: false, description, schema });
const json = (ref: string, description = 'OK') => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } } });
const errors = {
  '400': json('Error', 'Invalid request (the error names the field)'),
  '401': json('Error', 'Missing or wrong API token'),
  '404': json('Error', 'Not found'),
};
const control = (action: string) => ({
  post: {
    summary: `${action[0]?.toUpperCase()}${action.slice(1)} a broadcast (forwarded on NATS broadcast.control)`,
    parameters: [idParam('id', 'broadcast id')],
    requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } } } } },
    responses: {
      '200': { description: 'The reply of the contacts service', content: { 'application/json': { schema: { type: 'object', properties: { ok: { const: true }, state: { type: 'object' } } } } } },
      ...errors,
      '409': json('Error', 'Refused: already cancelled, or completed (`already_completed`: every contact has its final state)'),
      '503': json('Error', 'No service answers broadcast.control'),
      '504': json('Error', 'No answer in time'),
    },
  },
});

export const openApiDocument = {
  openapi: '3.1.0',
  info: { title: 'Clarion reporter', version: '0.1.0', description: 'Broadcast, contact and attempt records, live progress and exports.' },
  servers: [{ url: '/' }],
  security: [{ bearer: [] }],
  paths: {
    '/v1/broadcasts': {
      get: {
        summary: 'List broadcasts, newest first',
        parameters: [
          query('status', 'Filter by status', { enum: ['created', 'running', 'paused', 'cancelled', 'halted', 'completed'] }),
          query('since', 'Only broadcasts first seen at or after this time', { type: 'string', format: 'date-time' }),
          query('cursor', 'nextCursor of the previous page'),
          query('limit', 'Page size', { type: 'integer', minimum: 1, maximum: 200, default: 20 }),
        ],
        responses: { '200': json('BroadcastPage'), ...errors },
      },
    },
    '/v1/broadcasts/{id}': {
      get: { summary: 'Summary of one broadcast', parameters: [idParam('id', 'broadcast id')], responses: { '200': json('BroadcastSummary'), ...errors } },
    },
    '/v1/broadcasts/{id}/contacts': {
      get: {
        summary: 'Contacts of a broadcast by state',
        parameters: [
          idParam('id', 'broadcast id'),
          query('state', 'Comma-separated states, or `pending` / `final`'),
          query('notState', 'Comma-separated states to exclude (e.g. `acknowledged`), or `pending` / `final`'),
          query('cursor', 'nextCursor of the previous page'),
          query('limit', 'Page size', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }),
        ],
        responses: { '200': json('ContactPage'), ...errors },
      },
    },
    '/v1/broadcasts/{id}/timeline': {
      get: {
        summary: 'Calls placed and final outcomes per time bucket (second, or minute for broadcasts over 10 minutes)',
        parameters: [idParam('id', 'broadcast id')],
        responses: {
          '200': {
            description: 'OK',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  properties: {
                    bucket: { enum: ['second', 'minute'] },
                    calls: { type: 'array', items: { type: 'object', properties: { t: { type: 'string' }, n: { type: 'integer' } } } },
                    outcomes: { type: 'array', items: { type: 'object', properties: { t: { type: 'string' }, state: { type: 'string' }, n: { type: 'integer' } } } },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    '/v1/broadcasts/{id}/contacts/{cid}/attempts': {
      get: {
        summary: 'Attempts made to one contact',
        parameters: [idParam('id', 'broadcast id'), idParam('cid', 'contact id')],
        responses: { '200': json('AttemptList'), ...errors },
      },
    },
    '/v1/attempts': {
      get: {
        summary: 'Attempts to one number across broadcasts',
        parameters: [
          { name: 'number', in: 'query', required: true, description: 'E.164 number', schema: { type: 'string' } },
          query('limit', 'Maximum attempts', { type: 'integer', minimum: 1, maximum: 1000, default: 100 }),
        ],
        responses: { '200': json('AttemptList'), ...errors },
      },
    },
    '/v1/broadcasts/{id}/export.csv': {
      get: {
        summary: 'CSV export of contacts or attempts (streamed)',
        parameters: [idParam('id', 'broadcast id'), query('type', 'What to export', { enum: ['contacts', 'attempts'], default: 'contacts' })],
        responses: { '200': { description: 'CSV with a header row', content: { 'text/csv': { schema: { type: 'string' } } } }, ...errors },
      },
    },
    '/v1/broadcasts/{id}/stream': {
      get: {
        summary: 'Server-Sent Events: `summary` on change (≤ 4/s), then `final` when every contact is final',
        parameters: [idParam('id', 'broadcast id')],
        responses: { '200': { description: 'text/event-stream of BroadcastSummary', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors },
      },
    },
    '/v1/broadcasts/{id}/pause': control('pause'),
    '/v1/broadcasts/{id}/resume': control('resume'),
    '/v1/broadcasts/{id}/cancel': control('cancel'),
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'API_TOKEN; `?token=` is accepted too (EventSource, download links)' } },
    schemas: {
      Error: {
        type: 'object',
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
          },
        },
      },
      BroadcastSummary: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          name: { type: ['string', 'null'] },
          priority: { type: ['string', 'null'] },
          status: { enum: ['created', 'running', 'paused', 'cancelled', 'halted', 'completed'] },
          reason: { type: ['string', 'null'], description: 'why it was cancelled or halted, or, while paused, why it was paused' },
          lifecycle: {
            type: 'array',
            description: 'pauses, resumes, cancels, halts and expiries, oldest first',
            items: { type: 'object', properties: { at: { type: 'string', format: 'date-time' }, type: { type: 'string' }, reason: { type: ['string', 'null'] } } },
          },
          acknowledgement: { type: ['boolean', 'null'], description: 'whether people are asked to confirm with a key (null: not known)' },
          audience: { type: ['integer', 'null'], description: 'accepted + duplicate + suppressed, once enqueued' },
          counts: { type: 'object', additionalProperties: { type: 'integer' }, description: 'contacts per state; adds up to the audience' },
          pending: { type: 'integer' },
          final: { type: 'integer' },
          done: { type: 'boolean' },
          attempts: { type: 'integer' },
          timings: {
            type: 'object',
            properties: Object.fromEntries(['createdAt', 'firstCallAt', 'lastCallAt', 'completedAt'].map((k) => [k, { type: ['string', 'null'], format: 'date-time' }])),
          },
          rates: {
            type: 'object',
            properties: {
              callsPerMinute: { type: ['number', 'null'] },
              answerRate: { type: ['number', 'null'], description: 'reached / called final contacts' },
              confirmationRate: { type: ['number', 'null'], description: 'acknowledged / reached; null when the broadcast asks nobody to confirm' },
            },
          },
          retries: {
            type: 'object',
            description: 'contacts waiting out a retry delay, and when the first and the last of their retries are due',
            properties: {
              waiting: { type: 'integer' },
              nextAt: { type: ['string', 'null'], format: 'date-time' },
              lastAt: { type: ['string', 'null'], format: 'date-time' },
            },
          },
          eta: { type: ['string', 'null'], format: 'date-time', description: 'from the call rate, and never before the last scheduled retry is due' },
          etaSeconds: { type: ['number', 'null'] },
        },
      },
      Contact: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          broadcastId: { type: 'string' },
          number: { type: ['string', 'null'] },
          name: { type: ['string', 'null'] },
          state: { type: 'string' },
          final: { type: 'boolean' },
          attempts: { type: 'integer' },
          lastOutcome: { type: ['string', 'null'] },
          reason: { type: ['string', 'null'] },
          retryAt: { type: ['string', 'null'], format: 'date-time', description: 'when the next attempt is due, while waiting_retry' },
          updatedAt: { type: ['string', 'null'] },
        },
      },
      Attempt: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          broadcastId: { type: 'string' },
          contactId: { type: 'string' },
          attempt: { type: 'integer' },
          uuid: { type: ['string', 'null'] },
          number: { type: ['string', 'null'] },
          outcome: { type: 'string' },
          final: { type: 'boolean' },
          statuses: { type: 'array', items: { type: 'string' } },
          unclassified: { type: 'array', items: { type: 'string' }, description: 'provider statuses Clarion does not know, kept raw' },
          details: { type: 'array', items: { type: 'string' } },
          digits: { type: 'array', items: { type: 'string' } },
          reason: { type: ['string', 'null'] },
          placedAt: { type: ['string', 'null'] },
          answeredAt: { type: ['string', 'null'] },
          endedAt: { type: ['string', 'null'] },
          duration: { type: ['number', 'null'] },
          price: { type: ['number', 'null'] },
        },
      },
      BroadcastPage: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/BroadcastSummary' } }, nextCursor: { type: ['string', 'null'] } } },
      ContactPage: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/Contact' } }, nextCursor: { type: ['string', 'null'] } } },
      AttemptList: { type: 'object', properties: { items: { type: 'array', items: { $ref: '#/components/schemas/Attempt' } } } },
    },
  },
} as const;
