export {
  createLocalPacer,
  createSharedPacer,
  PacerError,
  windowEarliest,
  recordGrants,
  type RecentGrant,
  type AcquireOptions,
  type Pacer,
  type PacerOptions,
  type SharedPacerOptions,
} from './pacer.js';
