import { Module } from '@nestjs/common';
import { SecretBox } from './secret-box';

/** The one SecretBox of the process (sealed webhook secrets, eval target keys, replica keys). */
@Module({ providers: [SecretBox], exports: [SecretBox] })
export class SecretBoxModule {}
