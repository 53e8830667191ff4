import { encodeContactVars, type BroadcastSpec, type DialJob } from '@clarion/contracts';

/** The answer and event webhook URLs of one attempt (ARCHITECTURE.md, "Webhook URLs"). */
export function webhookUrls(base: string, spec: BroadcastSpec, job: DialJob): { answerUrl: string; eventUrl: string } {
  const root = base.replace(/\/+$/, '');
  const ids = new URLSearchParams({ b: job.broadcastId, c: job.contactId, a: String(job.attempt) });
  const vars = {
    name: job.name,
    language: job.language ?? spec.request.message.language,
    vars: job.vars ?? {},
  };
  const v = encodeContactVars(vars);
  return {
    answerUrl: `${root}/webhooks/answer?${ids.toString()}&v=${v}`,
    eventUrl: `${root}/webhooks/event?${ids.toString()}`,
  };
}
