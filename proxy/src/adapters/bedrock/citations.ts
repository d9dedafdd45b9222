import type { TextCitation } from '@ccproxy/core';
import type { ConverseCitation } from './converse-types.ts';
import { unionMember, type SkippedMembers } from './skipped-members.ts';

/**
 * A Converse citation (`Citation` in a `citationsContent` block, or a stream's `CitationsDelta`)
 * → the Anthropic citation with the same location. Bedrock passes Claude's own indices through,
 * so `documentIndex` / `searchResultIndex` and the ranges map one to one. A location of a kind
 * the proxy does not know is skipped (and logged once) like any unknown union member.
 */
export function fromConverseCitation(citation: ConverseCitation, skipped: SkippedMembers): TextCitation | undefined {
  const cited_text = (citation.sourceContent ?? []).map((part) => part.text ?? '').join('');
  const title = citation.title ?? null;
  const location = citation.location ?? {};
  const member = unionMember(location);
  const { documentChar, documentPage, documentChunk, searchResultLocation, web } = location;
  switch (member) {
    case 'documentChar':
      return {
        type: 'char_location',
        cited_text,
        document_index: documentChar?.documentIndex ?? 0,
        document_title: title,
        start_char_index: documentChar?.start ?? 0,
        end_char_index: documentChar?.end ?? 0,
        file_id: null,
      };
    case 'documentPage':
      return {
        type: 'page_location',
        cited_text,
        document_index: documentPage?.documentIndex ?? 0,
        document_title: title,
        start_page_number: documentPage?.start ?? 1,
        end_page_number: documentPage?.end ?? 1,
        file_id: null,
      };
    case 'documentChunk':
      return {
        type: 'content_block_location',
        cited_text,
        document_index: documentChunk?.documentIndex ?? 0,
        document_title: title,
        start_block_index: documentChunk?.start ?? 0,
        end_block_index: documentChunk?.end ?? 0,
        file_id: null,
      };
    case 'searchResultLocation':
      return {
        type: 'search_result_location',
        cited_text,
        search_result_index: searchResultLocation?.searchResultIndex ?? 0,
        source: citation.source ?? '',
        title,
        start_block_index: searchResultLocation?.start ?? 0,
        end_block_index: searchResultLocation?.end ?? 0,
      };
    case 'web':
      // Converse has no encrypted index (it serves no web search tool): the field stays empty.
      return { type: 'web_search_result_location', cited_text, url: web?.url ?? '', title, encrypted_index: '' };
    default:
      skipped.note('CitationLocation', member ?? '(none)');
      return undefined;
  }
}
