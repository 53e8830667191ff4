export {
  createLocalPacer,
  createSharedPacer,
  PacerError,
  type Pacer,
  type PacerOptions,
  type SharedPacerOptions,
} from './pacer.js';
