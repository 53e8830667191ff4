export * from './subjects.js';
export * from './messages.js';
export * from './outcome.js';
export * from './errors.js';
export * from './contact-vars.js';
export * from './rest.js';
