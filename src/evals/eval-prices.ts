import { Injectable } from '@nestjs/common';
import { Config } from '../config/config';
import { availabilityWarning, PriceTable, priceTable } from './prices';

/**
 * The price table this process uses: the built-in rows, then EVAL_PRICES_FILE, then EVAL_PRICES (each checked at
 * start by the config). One instance, so a report and a target's warning read the same prices.
 */
@Injectable()
export class EvalPrices {
  readonly table: PriceTable;

  constructor(config: Config) {
    this.table = priceTable(config.env.EVAL_PRICES ?? {}, priceTable(config.env.EVAL_PRICES_FILE ?? {}));
  }

  /** The warning for a new target on `model` today, or null. */
  warningFor(model: string, now = new Date()): string | null {
    return availabilityWarning(this.table, model, now.toISOString().slice(0, 10));
  }
}
