export {
  createLocalPacer,
  createSharedPacer,
  PacerError,
  type AcquireOptions,
  type Pacer,
  type PacerOptions,
  type SharedPacerOptions,
} from './pacer.js';
