'use strict';
/** Output: the trained LoRA as a PEFT adapter directory (adapter_config.json + adapter_model.safetensors). */
const { Float32Array } = globalThis;
const fsp = require('node:fs/promises');
const path = require('node:path');
const model = require('./model');
const safetensors = require('./safetensors');

function adapterConfig(lora) {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: model.MODEL_NAME,
    // PEFT's field for the base model's version: serving refuses adapters of another tiny-lora base by it.
    revision: model.BASE_SEED,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [model.TARGET_MODULE],
    bias: 'none',
    modules_to_save: null,
    use_dora: false,
    use_rslora: false,
    fan_in_fan_out: false,
    inference_mode: true,
  };
}

/**
 * The adapter's files as bytes. F32 on disk (PEFT/vLLM load it as such); training runs in float64.
 * @returns {{ name: string, data: Buffer }[]}
 */
function adapterFiles(trained, lora) {
  const weights = safetensors.serialize(
    {
      [model.LORA_A_NAME]: { shape: [trained.r, model.D], data: Float32Array.from(trained.A) },
      [model.LORA_B_NAME]: { shape: [model.V, trained.r], data: Float32Array.from(trained.B) },
    },
    { format: 'pt' },
  );
  return [
    { name: 'adapter_config.json', data: Buffer.from(`${JSON.stringify(adapterConfig(lora), null, 2)}\n`) },
    { name: 'adapter_model.safetensors', data: weights },
  ];
}

async function writeFiles(dir, files) {
  await fsp.mkdir(dir, { recursive: true });
  for (const f of files) await fsp.writeFile(path.join(dir, f.name), f.data);
}

module.exports = { adapterConfig, adapterFiles, writeFiles };
