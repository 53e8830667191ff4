import { Counter, type Registry } from '@clarion/http';

/** Service metrics beyond the HTTP and process defaults. */
export interface ContactsMetrics {
  broadcasts: Counter<'result'>;
  contacts: Counter<'state'>;
  importRows: Counter<'result'>;
}

export function createContactsMetrics(registry: Registry): ContactsMetrics {
  return {
    broadcasts: new Counter({
      name: 'contacts_broadcast_requests_total',
      help: 'Broadcast requests by result (created, existing, rejected, failed)',
      labelNames: ['result'],
      registers: [registry],
    }),
    contacts: new Counter({
      name: 'contacts_broadcast_contacts_total',
      help: 'Audience entries of created broadcasts by state (accepted, invalid, duplicate, suppressed)',
      labelNames: ['state'],
      registers: [registry],
    }),
    importRows: new Counter({
      name: 'contacts_import_rows_total',
      help: 'Imported rows by result (imported, updated, unchanged, invalid, duplicate)',
      labelNames: ['result'],
      registers: [registry],
    }),
  };
}
