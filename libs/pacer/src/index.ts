export {
  createLocalPacer,
  createSharedPacer,
  PacerError,
  windowEarliest,
  type RecentGrant,
  type AcquireOptions,
  type Pacer,
  type PacerOptions,
  type SharedPacerOptions,
} from './pacer.js';
