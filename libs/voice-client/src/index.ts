export {
  createVoiceClient,
  toVoiceNumber,
  type VoiceClient,
  type VoiceClientOptions,
  type CreateCallBody,
  type CreatedCall,
  type CallInfo,
  type PhoneEndpoint,
} from './client.js';
export { VoiceApiError, type VoiceApiErrorCode } from './errors.js';
export { createTokenSource, type TokenSourceOptions } from './token.js';
