/** Table types of content pages and the showcase (migration 0019_portal_brand), joined with `withTables`. */

export interface ContentPageTable {
  id: string;
  slug: string;
  title: string;
  body: string;
  /** everyone | developers | plans */
  visibility: string;
  /** JSON array of plan ids */
  plan_ids: string;
  in_navigation: number;
  position: number;
  created_at: string;
  updated_at: string;
}

export interface ShowcaseEntryTable {
  application_id: string;
  consent: number;
  consent_at: string | null;
  featured: number;
  name: string;
  logo_url: string;
  description: string;
  link_url: string;
  position: number;
  updated_at: string;
}

export type BrandTables = { content_pages: ContentPageTable; showcase_entries: ShowcaseEntryTable };
