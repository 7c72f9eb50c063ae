/**
 * Limits every model shares, in one place: the API's create body, the stored record (hyperparameters.ts) and the
 * trainer contract's spec all check against these; the model catalog re-exports them beside each model's own LoRA
 * rank cap (`lora.maxRank`, at most `lora.rank.max`). Plain data, so the contract module stays loadable on its own.
 */
export const HYPERPARAMETER_LIMITS = {
  batchSize: { min: 1, max: 256 },
  nEpochs: { min: 1, max: 50 },
  learningRateMultiplier: { max: 100 },
  /** DPO's beta (OpenAI's method.dpo.hyperparameters.beta). */
  beta: { max: 10 },
  /** DPO's anchor (loraplane extension): the weight of the preferred output's NLL, as TRL's rpo_alpha. */
  rpoAlpha: { max: 10 },
  lora: { rank: { min: 1, max: 512 }, alphaMax: 4096, dropoutMax: 0.9 },
} as const;
