import { Controller, Get, Header } from '@nestjs/common';
import { Public } from '../common/auth/auth.decorators';
import { ApiDoc } from '../common/http/zod-validation';
import { renderDocsPage } from './docs-page';
import { OpenApiBuilder } from './openapi.builder';

@Controller()
export class DocsController {
  constructor(private readonly builder: OpenApiBuilder) {}

  @Get('openapi.json')
  @Public()
  @ApiDoc({ summary: 'This OpenAPI document', tags: ['docs'], public: true })
  openapi() {
    return this.builder.document();
  }

  @Get('docs')
  @Public()
  @Header('content-type', 'text/html; charset=utf-8')
  @ApiDoc({ summary: 'API reference page (self-contained HTML, from the OpenAPI document)', tags: ['docs'], public: true, responseContentType: 'text/html' })
  docs() {
    return renderDocsPage(this.builder.document());
  }
}
