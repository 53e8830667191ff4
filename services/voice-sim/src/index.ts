export { createVoiceSim, VonageProblem, type VoiceSim, type VoiceSimDeps } from './app.js';
export { loadVoiceSimConfig, simSettings, SimSettings, SimOutcome, SIM_OUTCOMES, NumberOverride, type VoiceSimConfig, type SimSettingsInput } from './config.js';
export { LAST_DIGIT_OUTCOMES, chooseOutcome } from './outcomes.js';
export type { Clock } from './sim.js';
export { nccoProblems, parseNcco, NccoAction, MAX_TALK_TEXT } from './schemas.js';
